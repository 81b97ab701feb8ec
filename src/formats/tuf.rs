//! TUF metadata as python-tuf and securesystemslib write and check it
//! (docs/FORMATS.md "TUF").
//!
//! Owns the OLPC canonical JSON that TUF signs ([`olpc`]), the four
//! top-level roles' `signed` objects, their envelopes
//! `{"signatures":[{keyid, sig}], "signed": …}` ([`envelope`],
//! [`Metadata`]) and which keys a role trusts ([`Metadata::role_keys`]).
//! Signing and checking signatures is the signing layer's `tuf` module's (keys are
//! plain hex here).
//!
//! Why our own writer rather than a crate: securesystemslib's
//! `encode_canonical` escapes only `\` and `"`, keeps control characters
//! raw, sorts keys by code point and refuses floats; `olpc-cjson` also
//! NFC-normalises strings and sorts keys by their quoted bytes, which
//! differs for some keys, and `crate::canon` escapes control characters.
//! Signatures must be over exactly the bytes python-tuf re-serialises, so
//! this module is the one place those rules live.
//!
//! Invariants: a metadata file is the OLPC encoding of its whole envelope
//! (so file bytes are deterministic and the `signed` part is byte for
//! byte what is signed); every string written is free of control
//! characters (file bytes then also parse as JSON); `expires` is
//! `YYYY-MM-DDTHH:MM:SSZ`; keyids are securesystemslib's default keyid.

use serde_json::{json, Map, Value};

use crate::digest::Sha256;

/// The spec version written in every `signed` object (python-tuf 5–7 accept any 1.x).
pub const SPEC_VERSION: &str = "1.0.31";

/// The four top-level roles, in the order files are written.
pub const ROLES: [&str; 4] = ["root", "snapshot", "targets", "timestamp"];

/// OLPC canonical JSON of `v`, as securesystemslib's `encode_canonical`:
/// sorted keys (by code point), no whitespace, only `\` and `"` escaped,
/// integers only. A float, or a control character in any string, is an
/// error (the latter because the file would then not be JSON).
pub fn olpc(v: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    write(v, &mut out)?;
    Ok(out)
}

fn write_str(s: &str, out: &mut Vec<u8>) -> Result<(), String> {
    if let Some(c) = s.chars().find(|c| c.is_control() && (*c as u32) < 0x20) {
        return Err(format!("control character U+{:04X} in {s:?}", c as u32));
    }
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    Ok(())
}

fn write(v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes())
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes())
            } else {
                return Err(format!("non-integer number {n}"));
            }
        }
        Value::String(s) => write_str(s, out)?,
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(x, out)?;
            }
            out.push(b']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort(); // Rust `str` order is code point order, as Python's
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out)?;
                out.push(b':');
                write(&m[k], out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// A TUF key object of an Ed25519 public key (64 hex characters).
pub fn key_object(public_hex: &str) -> Value {
    json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": public_hex}})
}

/// securesystemslib's default keyid of an Ed25519 key: SHA-256 of its key object.
pub fn keyid(public_hex: &str) -> String {
    Sha256::of(&olpc(&key_object(public_hex)).expect("hex has no control character")).hex()
}

/// `expires` text of a Unix time.
pub fn expires(secs: i64) -> String {
    crate::timefmt::format_utc(secs)
}

/// Who signs a role (public keys as hex) and how many signatures it needs.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleKeys {
    pub keys: Vec<String>,
    pub threshold: u32,
}

/// The `signed` object of a root.
pub fn root(version: u64, expires_at: i64, roles: &[(&str, &RoleKeys)]) -> Value {
    let mut keys = Map::new();
    let mut role_map = Map::new();
    for (name, rk) in roles {
        let mut ids: Vec<String> = rk.keys.iter().map(|k| keyid(k)).collect();
        ids.sort();
        ids.dedup();
        for k in &rk.keys {
            keys.insert(keyid(k), key_object(k));
        }
        role_map.insert(name.to_string(), json!({"keyids": ids, "threshold": rk.threshold}));
    }
    json!({"_type": "root", "spec_version": SPEC_VERSION, "version": version, "expires": expires(expires_at),
           "consistent_snapshot": true, "keys": keys, "roles": role_map})
}

/// One target's entry: length and its SHA-256 (the only hash listed, so it
/// is the one consistent-snapshot file names use).
pub fn target_info(length: u64, sha256: &Sha256) -> Value {
    json!({"length": length, "hashes": {"sha256": sha256.hex()}})
}

/// The `signed` object of targets.
pub fn targets(version: u64, expires_at: i64, targets: Map<String, Value>) -> Value {
    json!({"_type": "targets", "spec_version": SPEC_VERSION, "version": version,
           "expires": expires(expires_at), "targets": targets})
}

/// A `meta` entry naming a metadata file by version, length and SHA-256.
pub fn meta_info(version: u64, bytes: &[u8]) -> Value {
    json!({"version": version, "length": bytes.len(), "hashes": {"sha256": Sha256::of(bytes).hex()}})
}

/// The `signed` object of snapshot, over the `targets.json` file bytes.
pub fn snapshot(version: u64, expires_at: i64, targets_version: u64, targets_file: &[u8]) -> Value {
    json!({"_type": "snapshot", "spec_version": SPEC_VERSION, "version": version,
           "expires": expires(expires_at), "meta": {"targets.json": meta_info(targets_version, targets_file)}})
}

/// The `signed` object of timestamp, over the `snapshot.json` file bytes.
pub fn timestamp(version: u64, expires_at: i64, snapshot_version: u64, snapshot_file: &[u8]) -> Value {
    json!({"_type": "timestamp", "spec_version": SPEC_VERSION, "version": version,
           "expires": expires(expires_at), "meta": {"snapshot.json": meta_info(snapshot_version, snapshot_file)}})
}

/// The file bytes of `signed` with `signatures` (`(keyid, signature)`),
/// sorted by keyid, one per keyid.
pub fn envelope(signed: &Value, signatures: Vec<(String, Vec<u8>)>) -> Result<Vec<u8>, String> {
    let mut sigs = signatures;
    sigs.sort();
    sigs.dedup_by(|a, b| a.0 == b.0);
    let sigs: Vec<Value> =
        sigs.into_iter().map(|(keyid, sig)| json!({"keyid": keyid, "sig": hex::encode(sig)})).collect();
    olpc(&json!({"signatures": sigs, "signed": signed}))
}

/// Why a metadata file is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum TufError {
    #[error("{file}: {message}")]
    Malformed { file: String, message: String },
    #[error("{file}: signed by {valid} of the {threshold} keys role {role} needs")]
    Unsigned { file: String, role: String, valid: usize, threshold: u64 },
}

/// A parsed metadata file.
#[derive(Clone, Debug)]
pub struct Metadata {
    pub signed: Value,
    pub signatures: Vec<(String, Vec<u8>)>,
}

impl Metadata {
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Self, TufError> {
        let bad = |m: &str| TufError::Malformed { file: file.to_string(), message: m.to_string() };
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(&format!("not JSON: {e}")))?;
        let signed = v.get("signed").cloned().ok_or_else(|| bad("no signed object"))?;
        let mut signatures = Vec::new();
        for s in v.get("signatures").and_then(Value::as_array).ok_or_else(|| bad("no signatures list"))? {
            let keyid =
                s.get("keyid").and_then(Value::as_str).ok_or_else(|| bad("signature without keyid"))?;
            let sig = s.get("sig").and_then(Value::as_str).and_then(|h| hex::decode(h).ok());
            signatures.push((keyid.to_string(), sig.ok_or_else(|| bad("signature is not hex"))?));
        }
        Ok(Metadata { signed, signatures })
    }
    pub fn kind(&self) -> Option<&str> {
        self.signed.get("_type").and_then(Value::as_str)
    }
    pub fn version(&self) -> Option<u64> {
        self.signed.get("version").and_then(Value::as_u64)
    }
    pub fn expires(&self) -> Option<i64> {
        let t = self.signed.get("expires").and_then(Value::as_str)?;
        crate::timefmt::parse(t).map(|i| i.secs)
    }

    /// The keys (keyid → public hex) and threshold that `root` (a root's
    /// `signed`) gives `role`; keys whose keyid is not their own are left out.
    pub fn role_keys(root: &Value, role: &str) -> Option<(Vec<(String, String)>, u64)> {
        let r = root.get("roles")?.get(role)?;
        let threshold = r.get("threshold")?.as_u64()?;
        let mut keys = Vec::new();
        for id in r.get("keyids")?.as_array()?.iter().filter_map(Value::as_str) {
            let public = root.get("keys").and_then(|k| k.get(id)).and_then(|k| k.pointer("/keyval/public"));
            if let Some(p) = public.and_then(Value::as_str) {
                if keyid(p) == id {
                    keys.push((id.to_string(), p.to_string()));
                }
            }
        }
        Some((keys, threshold))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden vector computed with securesystemslib 1.6.0's encode_canonical.
    #[test]
    fn olpc_matches_securesystemslib() {
        let v = json!({"b":1,"a":[true,null,-5,"q\"b\\s"],"é":"ü","a b":0,"a!":1,"aa":3});
        assert_eq!(
            String::from_utf8(olpc(&v).unwrap()).unwrap(),
            "{\"a\":[true,null,-5,\"q\\\"b\\\\s\"],\"a b\":0,\"a!\":1,\"aa\":3,\"b\":1,\"é\":\"ü\"}"
        );
        assert!(olpc(&json!({"f": 1.5})).is_err());
        assert!(olpc(&json!({"c": "a\nb"})).is_err(), "control characters are refused");
    }

    /// securesystemslib's keyid of the key with seed 01×32 (docs/FORMATS.md).
    #[test]
    fn keyid_of_the_test_vector() {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]);
        let pk = hex::encode(sk.verifying_key().as_bytes());
        assert_eq!(pk, "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c");
        assert_eq!(keyid(&pk), "7ab6b86cb2c9684b0ddc10896153aa2595decf4d4327a5ff1a8ab7422c828b12");
        assert_eq!(
            olpc(&key_object(&pk)).unwrap(),
            br#"{"keytype":"ed25519","keyval":{"public":"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"},"scheme":"ed25519"}"#
        );
    }
}
