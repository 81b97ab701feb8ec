//! Signing: Ed25519 keys, the [`Signer`] trait, and DSSE envelopes signed
//! and checked with them.
//!
//! Owns every use of private keys. A [`Signer`] only signs bytes and names
//! its public key, so a KMS or HSM backend can implement it later without
//! the rest of the program changing; [`Ed25519Signer`] is the file or
//! environment key of today.
//!
//! Invariants:
//! - Private key material is never logged, hashed into step keys or
//!   written to the cache: a signer's `Debug` shows only its keyid, and
//!   steps name their key by the public keyid.
//! - The keyid is securesystemslib's default keyid: SHA-256 of the
//!   canonical JSON `{"keytype":"ed25519","keyval":{"public":"<hex>"},
//!   "scheme":"ed25519"}`, so independent verifiers match our envelopes.
//! - Ed25519 signatures are deterministic (RFC 8032), so the same payload
//!   and key always give the same envelope bytes.
//! - Large messages (a detached signature over a bundle) are signed and
//!   checked as streams ([`Signer::sign_stream`], [`PublicKey::verify_stream`]):
//!   pure Ed25519 reads the message twice to sign and once to check, never
//!   holding it (ed25519-dalek's `hazmat` streaming API; the checks
//!   `verify_strict` adds are made here too).

pub mod keys;
pub mod tuf;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ed25519_dalek::pkcs8::{DecodePublicKey, EncodePublicKey};
use ed25519_dalek::Signer as _;

use crate::canon;
use crate::digest::Sha256;
use crate::formats::dsse::{self, Envelope};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: cannot read the key: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "{path}: signing key is accessible by group or others (mode {mode:04o}); run `chmod 600 {path}`"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{what}: {message}")]
    Malformed { what: String, message: String },
    #[error("environment variable {var} (signing key-env) is not set or empty")]
    Env { var: String },
    #[error("{path}: already exists; remove it or choose another --out")]
    Exists { path: PathBuf },
    #[error("{path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("signing failed: {0}")]
    Sign(String),
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.keyid())
    }
}

impl PublicKey {
    pub fn from_bytes(b: &[u8; 32]) -> Result<Self, String> {
        ed25519_dalek::VerifyingKey::from_bytes(b).map(PublicKey).map_err(|e| e.to_string())
    }

    /// The 32 raw key bytes as 64 lowercase hex characters.
    pub fn hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// securesystemslib's default keyid (see the module doc).
    pub fn keyid(&self) -> String {
        let v =
            serde_json::json!({"keytype": "ed25519", "keyval": {"public": self.hex()}, "scheme": "ed25519"});
        Sha256::of(&canon::to_vec(&v)).hex()
    }

    /// Parse a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    /// The error says what the text is instead (another algorithm by name
    /// and OID, a private key, an OpenSSH key), never quoting it.
    pub fn from_pem(text: &str, what: &str) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(text.trim())
            .map(PublicKey)
            .map_err(|e| KeyError::Malformed { what: what.to_string(), message: why_not_ed25519(text, &e) })
    }

    pub fn to_pem(&self) -> String {
        self.0.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).expect("encodable")
    }

    /// Strict RFC 8032 verification (rejects malleable signatures).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else { return false };
        self.0.verify_strict(msg, &sig).is_ok()
    }

    /// [`PublicKey::verify`] of the message `feed` writes, read once as a
    /// stream. An error of `feed` is returned as is.
    pub fn verify_stream(&self, sig: &[u8], feed: Feed<'_>) -> std::io::Result<bool> {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else { return Ok(false) };
        // what verify_strict checks besides the equation: no small-order R or key
        let r = curve25519_dalek::edwards::CompressedEdwardsY(*sig.r_bytes());
        if self.0.is_weak() || r.decompress().is_none_or(|r| r.is_small_order()) {
            return Ok(false);
        }
        let Ok(mut v) = self.0.verify_stream(&sig) else { return Ok(false) };
        feed(&mut Hashing(|b: &[u8]| v.update(b)))?;
        Ok(v.finalize_and_verify().is_ok())
    }

    /// The key as JSON for step parameters and provenance (no secrets).
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({"keyid": self.keyid(), "keytype": "ed25519", "scheme": "ed25519", "public": self.hex()})
    }
}

/// Ed25519's algorithm OID (RFC 8410).
const ED25519_OID: &str = "1.3.101.112";

/// What a trust root that is not an Ed25519 SPKI PEM is, for the error.
fn why_not_ed25519(text: &str, err: &dyn std::fmt::Display) -> String {
    use ed25519_dalek::pkcs8::spki::der::pem;
    use ed25519_dalek::pkcs8::spki::SubjectPublicKeyInfoRef;
    let t = text.trim();
    if t.starts_with("ssh-") || t.starts_with("ecdsa-sha2-") {
        return "an OpenSSH public key, not a PEM one: convert it with `ssh-keygen -e -m PKCS8 -f FILE`"
            .into();
    }
    let Ok((label, der)) = pem::decode_vec(t.as_bytes()) else {
        return "not a PEM public key (expected `-----BEGIN PUBLIC KEY-----`, as `keygen` writes)".into();
    };
    match label {
        "PUBLIC KEY" => {}
        l if l.contains("PRIVATE KEY") => {
            return format!("a private key ({l}), not a public key: give the `.pub` file")
        }
        "RSA PUBLIC KEY" => return "not an Ed25519 public key (found RSA, a PKCS#1 RSA PUBLIC KEY)".into(),
        l => return format!("a PEM {l}, not a public key (expected `-----BEGIN PUBLIC KEY-----`)"),
    }
    match SubjectPublicKeyInfoRef::try_from(der.as_slice()) {
        Err(e) => format!("not a SubjectPublicKeyInfo public key ({e})"),
        Ok(spki) => {
            let oid = spki.algorithm.oid.to_string();
            let name = match oid.as_str() {
                ED25519_OID => return format!("a malformed Ed25519 public key ({err})"),
                "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => "RSA",
                "1.2.840.10045.2.1" => "EC (ECDSA)",
                "1.2.840.10040.4.1" => "DSA",
                "1.3.101.113" => "Ed448",
                "1.3.101.110" => "X25519",
                "1.3.101.111" => "X448",
                _ => "another algorithm",
            };
            format!("not an Ed25519 public key (found {name}, OID {oid})")
        }
    }
}

/// A message given as a stream: the function writes it, whole, to the sink
/// it is given, as often as it is called.
pub type Feed<'a> = &'a dyn Fn(&mut dyn std::io::Write) -> std::io::Result<()>;

/// A [`std::io::Write`] that hands every byte to a hash update.
struct Hashing<F: FnMut(&[u8])>(F);

impl<F: FnMut(&[u8])> std::io::Write for Hashing<F> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        (self.0)(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Anything that can sign bytes with a key whose public half it names.
pub trait Signer: Send + Sync {
    fn public_key(&self) -> PublicKey;
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError>;
    /// The signature of the message `feed` writes. The default holds the
    /// message in memory; signers that can stream override it.
    fn sign_stream(&self, feed: Feed<'_>) -> Result<Vec<u8>, KeyError> {
        let mut msg = Vec::new();
        feed(&mut msg).map_err(|e| KeyError::Sign(format!("reading the message: {e}")))?;
        self.sign(&msg)
    }
}

/// A local Ed25519 private key (from a PKCS#8 PEM file or variable).
pub struct Ed25519Signer {
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519Signer(keyid {})", self.public_key().keyid())
    }
}

impl Ed25519Signer {
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Ed25519Signer { key: ed25519_dalek::SigningKey::from_bytes(secret) }
    }
}

impl Signer for Ed25519Signer {
    fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
    /// RFC 8032 signing reads the message twice (nonce, then challenge):
    /// `feed` is called twice, and the signature equals [`Signer::sign`]'s.
    fn sign_stream(&self, feed: Feed<'_>) -> Result<Vec<u8>, KeyError> {
        use ed25519_dalek::hazmat::{raw_sign_byupdate, ExpandedSecretKey};
        let esk = ExpandedSecretKey::from(&self.key.to_bytes());
        let failed = std::cell::RefCell::new(None);
        let signed = raw_sign_byupdate::<sha2::Sha512, _>(
            &esk,
            |h| {
                feed(&mut Hashing(|b: &[u8]| sha2::Digest::update(h, b))).map_err(|e| {
                    *failed.borrow_mut() = Some(e);
                    ed25519_dalek::SignatureError::new()
                })
            },
            &self.key.verifying_key(),
        );
        match (signed, failed.into_inner()) {
            (_, Some(e)) => Err(KeyError::Sign(format!("reading the message: {e}"))),
            (Ok(sig), None) => Ok(sig.to_bytes().to_vec()),
            (Err(e), None) => Err(KeyError::Sign(e.to_string())),
        }
    }
}

/// The signers a run may use, by keyid. Steps name a key by its keyid
/// (a parameter, so a new key re-keys the signing step); the action looks
/// the signer up here.
#[derive(Clone, Default)]
pub struct Keyring {
    signers: BTreeMap<String, Arc<dyn Signer>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.signers.keys()).finish()
    }
}

impl Keyring {
    pub fn add(&mut self, s: Arc<dyn Signer>) -> PublicKey {
        let pk = s.public_key();
        self.signers.insert(pk.keyid(), s);
        pk
    }
    pub fn get(&self, keyid: &str) -> Option<&dyn Signer> {
        self.signers.get(keyid).map(|s| s.as_ref())
    }
}

/// A DSSE envelope over `payload`, signed by `signer`.
pub fn sign_envelope(
    signer: &dyn Signer,
    payload_type: &str,
    payload: Vec<u8>,
) -> Result<Envelope, KeyError> {
    let sig = signer.sign(&dsse::pae(payload_type, &payload))?;
    Ok(Envelope {
        payload_type: payload_type.to_string(),
        payload,
        signatures: vec![dsse::Signature { keyid: signer.public_key().keyid(), sig }],
    })
}

/// Check that at least one signature of `env` verifies under one of
/// `roots`; returns the keyid of the first root that verified. Keyids in
/// the envelope are hints: a signature whose keyid matches no root is
/// still tried against every root.
pub fn check_envelope(env: &Envelope, roots: &[PublicKey]) -> Result<String, String> {
    let pae = env.pae();
    for s in &env.signatures {
        let mut order: Vec<&PublicKey> = roots.iter().filter(|r| r.keyid() == s.keyid).collect();
        order.extend(roots.iter().filter(|r| r.keyid() != s.keyid));
        if let Some(r) = order.into_iter().find(|r| r.verify(&pae, &s.sig)) {
            return Ok(r.keyid());
        }
    }
    let ids: Vec<&str> = env.signatures.iter().map(|s| s.keyid.as_str()).collect();
    Err(format!("no signature verifies under the trust root(s) (envelope keyids: {})", ids.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyid_is_securesystemslib_default() {
        // RFC 8032 test 1 public key; keyid computed independently with
        // securesystemslib: SSlibKey.from_crypto(Ed25519PublicKey...).keyid
        let pk = PublicKey::from_bytes(
            &hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
                .unwrap()
                .try_into()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(pk.keyid(), "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916");
    }

    #[test]
    fn envelopes_sign_deterministically_and_check() {
        let s = Ed25519Signer::from_secret(&[7; 32]);
        let other = Ed25519Signer::from_secret(&[8; 32]);
        let a = sign_envelope(&s, "t", b"payload".to_vec()).unwrap();
        let b = sign_envelope(&s, "t", b"payload".to_vec()).unwrap();
        assert_eq!(a.to_json(), b.to_json());
        assert_eq!(check_envelope(&a, &[s.public_key()]).unwrap(), s.public_key().keyid());
        assert!(check_envelope(&a, &[other.public_key()]).is_err());
        let mut t = a.clone();
        t.payload[0] ^= 1;
        assert!(check_envelope(&t, &[s.public_key()]).is_err());
        let mut t = a.clone();
        t.payload_type = "u".into();
        assert!(check_envelope(&t, &[s.public_key()]).is_err());
        // a wrong keyid hint does not stop a valid signature from verifying
        let mut t = a;
        t.signatures[0].keyid = "nope".into();
        assert!(check_envelope(&t, &[other.public_key(), s.public_key()]).is_ok());
        assert!(format!("{s:?}").contains(&s.public_key().keyid()));
    }

    #[test]
    fn streamed_signatures_equal_whole_message_ones() {
        let s = Ed25519Signer::from_secret(&[7; 32]);
        let other = Ed25519Signer::from_secret(&[8; 32]);
        let msg: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        // written in uneven pieces, as a file copy would
        let feed = |w: &mut dyn std::io::Write| msg.chunks(8191).try_for_each(|c| w.write_all(c));
        let sig = s.sign_stream(&feed).unwrap();
        assert_eq!(sig, s.sign(&msg).unwrap(), "RFC 8032: one signature per key and message");
        let pk = s.public_key();
        assert!(pk.verify(&msg, &sig));
        assert!(pk.verify_stream(&sig, &feed).unwrap());
        assert!(!other.public_key().verify_stream(&sig, &feed).unwrap());
        let mut bad = sig.clone();
        bad[40] ^= 1;
        assert!(!pk.verify_stream(&bad, &feed).unwrap());
        assert!(!pk.verify_stream(&sig[..63], &feed).unwrap());
        let changed = |w: &mut dyn std::io::Write| {
            feed(w)?;
            w.write_all(b"x")
        };
        assert!(!pk.verify_stream(&sig, &changed).unwrap());
        // a small-order R (the identity point, encoded as 1) is refused as verify_strict does
        let mut small = sig.clone();
        small[..32].copy_from_slice(&{
            let mut r = [0u8; 32];
            r[0] = 1;
            r
        });
        assert!(!pk.verify(&msg, &small) && !pk.verify_stream(&small, &feed).unwrap());
        // a reader's error is the caller's, not a failed check
        let broken = |_: &mut dyn std::io::Write| Err(std::io::Error::other("disk gone"));
        assert!(pk.verify_stream(&sig, &broken).is_err());
        let e = s.sign_stream(&broken).unwrap_err().to_string();
        assert!(e.contains("disk gone"), "{e}");
    }
}
