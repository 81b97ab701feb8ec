//! DSSE envelopes (Dead Simple Signing Envelope v1), byte for byte.
//!
//! Owns the envelope's JSON form and the PAE (pre-authentication encoding)
//! that signatures cover. No cryptography lives here: `signing` signs and
//! checks the PAE bytes.
//!
//! Invariants:
//! - PAE is `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`,
//!   lengths as ASCII decimal byte counts, the payload raw (not base64).
//! - `payload` and `sig` are standard base64 with padding.
//! - The envelope file is sorted-key pretty JSON ending in a newline, so
//!   the same payload and signatures always give the same bytes.
//! - Parsing is strict: unknown fields, a missing or empty signature list,
//!   or bad base64 are errors naming the field.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::canon;

/// The in-toto payload type (`provenance.dsse.json`).
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Our payload type for `manifest.dsse.json`.
pub const MANIFEST_PAYLOAD_TYPE: &str = "application/vnd.export-center.manifest+json";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// A hint naming the key (securesystemslib's keyid); not authenticated.
    pub keyid: String,
    pub sig: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
}

/// The bytes a DSSE signature covers.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(
        format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).as_bytes(),
    );
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let sigs: Vec<Value> =
            self.signatures.iter().map(|s| json!({"keyid": s.keyid, "sig": B64.encode(&s.sig)})).collect();
        let v = json!({
            "payload": B64.encode(&self.payload),
            "payloadType": self.payload_type,
            "signatures": sigs,
        });
        canon::to_pretty(&v)
    }

    /// Parse an envelope; errors name the offending field. Parsed into
    /// typed fields (no `serde_json::Value`), so memory stays about the
    /// size of the text; more than [`MAX_SIGNATURES`] signatures is an
    /// error (each one costs a verification per trust root).
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, String> {
        let raw: RawEnvelope = serde_json::from_slice(bytes).map_err(|e| {
            let m = e.to_string();
            if m.starts_with("invalid type") && e.line() == 1 && e.column() <= 1 {
                "not a JSON object".to_string()
            } else {
                m
            }
        })?;
        let payload = B64.decode(raw.payload).map_err(|e| format!("payload: bad base64: {e}"))?;
        if raw.signatures.0.is_empty() {
            return Err("signatures: empty".into());
        }
        let mut signatures = Vec::new();
        for (i, sv) in raw.signatures.0.into_iter().enumerate() {
            let sig = B64.decode(sv.sig).map_err(|e| format!("signatures[{i}].sig: bad base64: {e}"))?;
            signatures.push(Signature { keyid: sv.keyid.unwrap_or_default(), sig });
        }
        Ok(Envelope { payload_type: raw.payload_type, payload, signatures })
    }
}

/// The most signatures one envelope may carry.
pub const MAX_SIGNATURES: usize = 16;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: RawSignatures,
}

#[derive(serde::Deserialize)]
struct RawSignature {
    keyid: Option<String>,
    sig: String,
}

struct RawSignatures(Vec<RawSignature>);

impl<'de> serde::Deserialize<'de> for RawSignatures {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawSignatures;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a list of at most {MAX_SIGNATURES} signatures")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawSignatures, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<RawSignature>()? {
                    if v.len() == MAX_SIGNATURES {
                        return Err(serde::de::Error::custom(format!(
                            "signatures: more than {MAX_SIGNATURES}"
                        )));
                    }
                    v.push(s);
                }
                Ok(RawSignatures(v))
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        // DSSE protocol.md test vector
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn envelope_roundtrips_and_rejects_junk() {
        let e = Envelope {
            payload_type: INTOTO_PAYLOAD_TYPE.into(),
            payload: b"{\"a\":1}".to_vec(),
            signatures: vec![Signature { keyid: "ab".into(), sig: vec![1, 2, 3] }],
        };
        let bytes = e.to_json();
        assert!(String::from_utf8_lossy(&bytes).contains("\"payload\": \"eyJhIjoxfQ==\""));
        assert_eq!(Envelope::from_json(&bytes).unwrap(), e);
        assert!(Envelope::from_json(
            b"{\"payload\":\"%%\",\"payloadType\":\"x\",\"signatures\":[{\"sig\":\"\"}]}"
        )
        .unwrap_err()
        .contains("payload"));
        assert!(Envelope::from_json(b"{\"payload\":\"\",\"payloadType\":\"x\",\"signatures\":[]}")
            .unwrap_err()
            .contains("empty"));
        assert!(Envelope::from_json(b"{\"payload\":\"\",\"payloadType\":\"x\",\"signatures\":[],\"x\":1}")
            .unwrap_err()
            .contains("unknown"));
    }
}
