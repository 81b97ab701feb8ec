//! Typed digests.
//!
//! Owns the two hash types of the project and their text forms:
//! - [`Digest`]: BLAKE3, for internal addressing (CAS blobs, step keys,
//!   shard listings). Written `b3:<64 hex>` where a type marker is useful.
//! - [`Sha256`]: SHA-256, for everything we publish (manifest, checksums,
//!   per-document digests inside records, source tree digests).
//!
//! Invariant: a digest value can only be made by hashing bytes or by
//! parsing exactly 64 lowercase hex characters; there is no "empty" digest.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! digest_type {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Lowercase hex, 64 characters.
            pub fn hex(&self) -> String {
                String::from(self.hex_str().as_str())
            }
            /// Lowercase hex without allocating.
            pub fn hex_str(&self) -> HexStr {
                HexStr::of(&self.0)
            }
            /// Parse 64 lowercase hex characters.
            pub fn parse_hex(s: &str) -> Option<Self> {
                if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
                    return None;
                }
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some(Self(out))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.hex_str().as_str())
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.hex()[..12])
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.hex_str().as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(HexVisitor(std::marker::PhantomData))
            }
        }
    };
}

/// 64 lowercase hex characters of a digest, on the stack.
#[derive(Clone, Copy)]
pub struct HexStr([u8; 64]);

impl HexStr {
    fn of(bytes: &[u8; 32]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in bytes.iter().enumerate() {
            out[2 * i] = DIGITS[(b >> 4) as usize];
            out[2 * i + 1] = DIGITS[(b & 15) as usize];
        }
        HexStr(out)
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

/// Deserialises a digest from a borrowed or owned string without copying it.
struct HexVisitor<T>(std::marker::PhantomData<T>);

trait FromHex: Sized {
    fn from_hex(s: &str) -> Option<Self>;
}

impl<T: FromHex> serde::de::Visitor<'_> for HexVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("64 lowercase hex characters")
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
        T::from_hex(s).ok_or_else(|| E::custom(format!("bad digest {s:?}")))
    }
}

digest_type!(Digest, "A BLAKE3 digest: internal content address.");
digest_type!(Sha256, "A SHA-256 digest: what published artifacts carry.");

impl FromHex for Digest {
    fn from_hex(s: &str) -> Option<Self> {
        Self::parse_hex(s)
    }
}
impl FromHex for Sha256 {
    fn from_hex(s: &str) -> Option<Self> {
        Self::parse_hex(s)
    }
}

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

impl Sha256 {
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(bytes).into())
    }
}

/// Incremental BLAKE3 hasher that frames every field with its length, so
/// `("ab","c")` and `("a","bc")` never collide.
pub struct FieldHasher(blake3::Hasher);

impl FieldHasher {
    pub fn new(domain: &str) -> Self {
        let mut h = Self(blake3::Hasher::new());
        h.field(domain.as_bytes());
        h
    }
    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }
    pub fn finish(&self) -> Digest {
        Digest(*self.0.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_rejects_bad_text() {
        let d = Digest::of(b"abc");
        assert_eq!(Digest::parse_hex(&d.hex()), Some(d));
        assert_eq!(Digest::parse_hex("00"), None);
        assert_eq!(Digest::parse_hex(&d.hex().to_uppercase()), None);
        assert_eq!(d.hex(), hex::encode(d.0), "the table encoder agrees with the hex crate");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        // an escaped string is not borrowed: still read
        let escaped = json.replacen('a', "\\u0061", 1);
        assert_eq!(serde_json::from_str::<Digest>(&escaped).unwrap(), d);
        let err = serde_json::from_str::<Sha256>("\"00\"").unwrap_err().to_string();
        assert!(err.contains("bad digest"), "{err}");
    }

    #[test]
    fn field_framing_separates_fields() {
        let a = FieldHasher::new("t").field(b"ab").field(b"c").finish();
        let b = FieldHasher::new("t").field(b"a").field(b"bc").finish();
        assert_ne!(a, b);
    }

    #[test]
    fn sha256_known_value() {
        assert_eq!(
            Sha256::of(b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
