//! Step keys: what makes a step's cached outputs reusable.
//!
//! A step key is BLAKE3 over length-framed fields, in this order:
//!
//! | input                                   | in the key? | why                                             |
//! |-----------------------------------------|-------------|-------------------------------------------------|
//! | key format version (`step-key-v2`)      | yes         | changing the encoding invalidates everything    |
//! | action id (`parse-documents`, ...)      | yes         | different code                                  |
//! | action version                          | yes         | bumped whenever an action's output bytes change |
//! | action code fingerprint (`src/code.rs`) | yes         | digest of the source files the action declares  |
//! |                                         |             | and `Cargo.lock`: a release whose code for an   |
//! |                                         |             | action differs re-runs that action's steps even |
//! |                                         |             | when nobody bumped its version                  |
//! | canonical parameters (sorted-key JSON)  | yes         | selectors, member names, level, profile meta,   |
//! |                                         |             | declared source path (names rejected files)     |
//! | input names, in sorted order            | yes         | which slot each digest fills                    |
//! | input digests (shard listing / blobs)   | yes         | the content, and only the content               |
//! | step id (`parse:pypi/0007`)             | no          | a label; identical work under two names shares  |
//! | rule file path / rule version           | no          | rules reach the key only through the above      |
//! | tool version                            | only as a   | `assemble-bundle` writes it in the manifest, so |
//! |                                         | parameter   | it is its `tool` parameter; elsewhere action    |
//! |                                         |             | versions carry output compatibility             |
//! | `--jobs`, `--keep-going`, `--explain`   | no          | scheduling never changes bytes                  |
//! | `--allow-invalid`                       | no          | parse output always lists rejections; the flag  |
//! |                                         |             | only decides whether the build may go on        |
//! | signing public key (keyid, public hex)  | only as a   | `seal-export`'s `signing` parameter: a new key  |
//! |                                         | parameter   | re-signs, nothing upstream reruns               |
//! | signing private key, key file path,     | no          | secrets never enter keys, the cache or logs;    |
//! | `key-env` variable                      |             | the key's identity is its public half           |
//!
//! Never hashed: absolute paths (the workspace may move), mtimes, ctimes,
//! inode numbers (the stat cache uses them to skip reading, never to key),
//! wall-clock time, host names, user ids, umask, time zone, locale, and
//! any environment variable. `SOURCE_DATE_EPOCH` enters only as the
//! `epoch` / `mtime` parameters of steps that write timestamps. The
//! declared source path is a parameter, but the absolute path it resolves
//! to never is: a relocated workspace keeps its cache (tested).

use crate::canon;
use crate::digest::{Digest, FieldHasher};

/// One named input group and the digests in it (in a stable order).
pub struct KeyInput<'a> {
    pub name: &'a str,
    pub digests: Vec<Digest>,
}

/// Digest of one input group (what step records compare for reasons).
pub fn group_digest(digests: &[Digest]) -> Digest {
    let mut h = FieldHasher::new("input-group-v1");
    for d in digests {
        h.field(&d.0);
    }
    h.finish()
}

pub fn params_digest(params: &serde_json::Value) -> Digest {
    FieldHasher::new("params-v1").field(&canon::to_vec(params)).finish()
}

/// The action's identity: its id, hand-kept version and code fingerprint.
#[derive(Clone, Copy, Debug)]
pub struct ActionId<'a> {
    pub id: &'a str,
    pub version: u32,
    pub code: Digest,
}

pub fn step_key(action: ActionId<'_>, params: &serde_json::Value, inputs: &[KeyInput<'_>]) -> Digest {
    let mut h = FieldHasher::new("step-key-v2");
    h.field(action.id.as_bytes())
        .field(&action.version.to_le_bytes())
        .field(&action.code.0)
        .field(&canon::to_vec(params));
    let mut sorted: Vec<&KeyInput<'_>> = inputs.iter().collect();
    sorted.sort_by_key(|i| i.name);
    for i in sorted {
        h.field(i.name.as_bytes()).field(&group_digest(&i.digests).0);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a<'a>(id: &'a str, version: u32, code: &[u8]) -> ActionId<'a> {
        ActionId { id, version, code: Digest::of(code) }
    }

    #[test]
    fn key_depends_on_exactly_the_declared_parts() {
        let d1 = Digest::of(b"1");
        let d2 = Digest::of(b"2");
        let base =
            step_key(a("a", 1, b"c"), &json!({"x": 1, "y": 2}), &[KeyInput { name: "i", digests: vec![d1] }]);
        // parameter order is irrelevant (canonical JSON)
        assert_eq!(
            base,
            step_key(a("a", 1, b"c"), &json!({"y": 2, "x": 1}), &[KeyInput { name: "i", digests: vec![d1] }])
        );
        assert_ne!(
            base,
            step_key(a("b", 1, b"c"), &json!({"x": 1, "y": 2}), &[KeyInput { name: "i", digests: vec![d1] }])
        );
        assert_ne!(
            base,
            step_key(a("a", 2, b"c"), &json!({"x": 1, "y": 2}), &[KeyInput { name: "i", digests: vec![d1] }])
        );
        assert_ne!(
            base,
            step_key(
                a("a", 1, b"other code"),
                &json!({"x": 1, "y": 2}),
                &[KeyInput { name: "i", digests: vec![d1] }]
            ),
            "the code fingerprint is in the key"
        );
        assert_ne!(
            base,
            step_key(a("a", 1, b"c"), &json!({"x": 1, "y": 3}), &[KeyInput { name: "i", digests: vec![d1] }])
        );
        assert_ne!(
            base,
            step_key(a("a", 1, b"c"), &json!({"x": 1, "y": 2}), &[KeyInput { name: "i", digests: vec![d2] }])
        );
        assert_ne!(
            base,
            step_key(a("a", 1, b"c"), &json!({"x": 1, "y": 2}), &[KeyInput { name: "j", digests: vec![d1] }])
        );
    }
}
