//! Signing TUF metadata and checking its signatures, with the run's keys
//! (`crate::formats::tuf` owns the bytes; keys stay here).
//!
//! Invariants: what is signed is the OLPC canonical `signed` object, as
//! python-tuf checks it; a role's signatures count once per key that the
//! root lists for it and whose keyid is its own.

use serde_json::Value;

use super::{PublicKey, Signer};
use crate::formats::tuf::{self, Metadata, TufError};

/// The file bytes of `signed` signed by each of `signers`.
pub fn sign(signed: &Value, signers: &[&dyn Signer]) -> Result<Vec<u8>, String> {
    let bytes = tuf::olpc(signed)?;
    let mut sigs = Vec::new();
    for s in signers {
        sigs.push((s.public_key().keyid(), s.sign(&bytes).map_err(|e| e.to_string())?));
    }
    tuf::envelope(signed, sigs)
}

/// Check that a threshold of `role`'s keys in `root` (a root's `signed`) signed `m`.
pub fn check(m: &Metadata, file: &str, root: &Value, role: &str) -> Result<(), TufError> {
    let bad = |msg: &str| TufError::Malformed { file: file.to_string(), message: msg.to_string() };
    let (keys, threshold) =
        Metadata::role_keys(root, role).ok_or_else(|| bad("the root has no such role"))?;
    let bytes = tuf::olpc(&m.signed).map_err(|e| bad(&e))?;
    let mut valid = std::collections::BTreeSet::new();
    for (keyid, sig) in &m.signatures {
        let Some((_, public)) = keys.iter().find(|(id, _)| id == keyid) else { continue };
        let key = hex::decode(public).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
        let Some(key) = key.and_then(|b| PublicKey::from_bytes(&b).ok()) else { continue };
        if key.verify(&bytes, sig) {
            valid.insert(keyid.clone());
        }
    }
    if (valid.len() as u64) < threshold {
        return Err(TufError::Unsigned {
            file: file.to_string(),
            role: role.to_string(),
            valid: valid.len(),
            threshold,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_metadata_checks_against_its_root_and_not_another() {
        let a = super::super::Ed25519Signer::from_secret(&[1u8; 32]);
        let b = super::super::Ed25519Signer::from_secret(&[2u8; 32]);
        let rk = |s: &super::super::Ed25519Signer| tuf::RoleKeys {
            keys: vec![s.public_key().hex()],
            threshold: 1,
        };
        let (ra, rb) = (rk(&a), rk(&b));
        let root_a = tuf::root(1, 2_000_000_000, &tuf::ROLES.map(|r| (r, &ra)));
        let root_b = tuf::root(1, 2_000_000_000, &tuf::ROLES.map(|r| (r, &rb)));
        let file = sign(&tuf::timestamp(1, 2_000_000_000, 1, b"{}"), &[&a]).unwrap();
        let m = Metadata::parse("timestamp.json", &file).unwrap();
        check(&m, "timestamp.json", &root_a, "timestamp").unwrap();
        assert!(check(&m, "timestamp.json", &root_b, "timestamp").is_err());
        // two keys, threshold 2: one signature is not enough
        let two = tuf::RoleKeys { keys: vec![a.public_key().hex(), b.public_key().hex()], threshold: 2 };
        let root2 = tuf::root(2, 2_000_000_000, &tuf::ROLES.map(|r| (r, &two)));
        assert!(check(&m, "timestamp.json", &root2, "timestamp").is_err());
        let both = sign(&tuf::timestamp(1, 2_000_000_000, 1, b"{}"), &[&a, &b]).unwrap();
        check(&Metadata::parse("t", &both).unwrap(), "t", &root2, "timestamp").unwrap();
    }
}
