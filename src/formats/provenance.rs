//! `provenance.json`: an in-toto Statement v1 with a SLSA Provenance v1
//! predicate describing how one export was built.
//!
//! Shape (field names are the specs'):
//! - `subject[]`: every published artifact of the export (the bundle and
//!   `manifest.json`; later kinds add theirs), `{name, digest: {sha256}}`,
//!   sorted by name. The metadata about them (`provenance.json` itself,
//!   `checksums.txt`, the DSSE envelopes) is not a subject.
//! - `buildDefinition.buildType`: [`BUILD_TYPE`];
//!   `externalParameters.profile`: name, kind, selectors, inputs;
//!   `internalParameters`: the tool and the rule (kind, version, where it
//!   comes from, the SHA-256 of its text, and the version of every action
//!   it runs);
//!   `resolvedDependencies[]`: every source with its `dirHash` (the in-toto
//!   DigestSet name for SHA-256 over the `sha256sum` listing of the
//!   source's documents, exactly the manifest's source `sha256`).
//! - `runDetails.builder.id`: [`BUILDER_ID`], with the tool version;
//!   `metadata.startedOn`/`finishedOn`: the pinned time, so provenance is
//!   reproducible; `invocationId`: derived from the profile and the
//!   manifest digest; `byproducts[]`: the `rerunHash`.
//!
//! Invariant: the statement is a pure function of its input, written as
//! canonical JSON (it is the signed payload byte for byte).

use serde_json::{json, Value};

use crate::canon;
use crate::digest::Sha256;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
pub const BUILD_TYPE: &str = "https://export-center.dev/buildtypes/profile-export/v1";
pub const BUILDER_ID: &str = "https://export-center.dev/builders/export-center";

pub struct Input<'a> {
    pub profile: &'a str,
    pub kind: &'a str,
    pub select: &'a Value,
    /// The manifest's `sources[]`: `{name, format, path, sha256, documents}`.
    pub sources: &'a Value,
    pub tool_version: &'a str,
    /// `{kind, version, path, sha256, actions: {id: version}}`: the rule's
    /// text digest, so two rules with one version never attest the same.
    pub rule: &'a Value,
    /// The policy of a json:policy export, `{path, sha256}` (null otherwise: left out).
    pub policy: &'a Value,
    /// RFC 3339 pinned time.
    pub time: &'a str,
    pub manifest_sha256: Sha256,
    pub rerun_hash: Sha256,
    pub subjects: Vec<(String, Sha256)>,
}

/// The statement as canonical JSON bytes.
pub fn statement(i: &Input<'_>) -> Vec<u8> {
    let mut subjects = i.subjects.clone();
    subjects.sort();
    let subject: Vec<Value> =
        subjects.iter().map(|(n, d)| json!({"name": n, "digest": {"sha256": d.hex()}})).collect();
    let sources = i.sources.as_array().cloned().unwrap_or_default();
    let inputs: Vec<Value> = sources.iter().filter_map(|s| s.get("name").cloned()).collect();
    let deps: Vec<Value> = sources
        .iter()
        .map(|s| {
            json!({
                "name": format!("source:{}", s.get("name").and_then(Value::as_str).unwrap_or_default()),
                "digest": {"dirHash": s.get("sha256").cloned().unwrap_or(Value::Null)},
                "annotations": {
                    "format": s.get("format").cloned().unwrap_or(Value::Null),
                    "path": s.get("path").cloned().unwrap_or(Value::Null),
                    "documents": s.get("documents").cloned().unwrap_or(Value::Null),
                },
            })
        })
        .collect();
    let mut profile = json!({"name": i.profile, "kind": i.kind, "selectors": i.select, "inputs": inputs});
    if !i.policy.is_null() {
        profile["policy"] = json!({"path": i.policy["path"], "sha256": i.policy["sha256"]});
    }
    let v = json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "profile": profile,
                },
                "internalParameters": {
                    "tool": {"name": "export-center", "version": i.tool_version},
                    "rule": i.rule,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"export-center": i.tool_version}},
                "metadata": {
                    "invocationId": format!("{}:{}", i.profile, i.manifest_sha256.hex()),
                    "startedOn": i.time,
                    "finishedOn": i.time,
                },
                "byproducts": [{
                    "name": "rerunHash",
                    "digest": {"sha256": i.rerun_hash.hex()},
                    "annotations": {"description": "SHA-256 over the sorted sha256 hex digests of the bundle members, joined by newlines"},
                }],
            },
        },
    });
    canon::to_vec(&v)
}

/// A parsed statement's subjects `(name, sha256)`; errors say what is wrong.
pub fn subjects(statement: &[u8]) -> Result<Vec<(String, Sha256)>, String> {
    let v: Value = serde_json::from_slice(statement).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("_type").and_then(Value::as_str) != Some(STATEMENT_TYPE) {
        return Err(format!("_type is not {STATEMENT_TYPE}"));
    }
    if v.get("predicateType").and_then(Value::as_str) != Some(SLSA_PROVENANCE_V1) {
        return Err(format!("predicateType is not {SLSA_PROVENANCE_V1}"));
    }
    let list = v.get("subject").and_then(Value::as_array).ok_or("subject: missing")?;
    if list.is_empty() {
        return Err("subject: empty".into());
    }
    list.iter()
        .enumerate()
        .map(|(k, s)| {
            let name = s.get("name").and_then(Value::as_str).ok_or(format!("subject[{k}].name missing"))?;
            let d = s
                .get("digest")
                .and_then(|d| d.get("sha256"))
                .and_then(Value::as_str)
                .and_then(Sha256::parse_hex)
                .ok_or(format!("subject[{k}].digest.sha256 missing or malformed"))?;
            Ok((name.to_string(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_is_canonical_and_subjects_parse_back() {
        let sources = json!([{"name": "pypi", "format": "osv", "path": "p", "sha256": "ab", "documents": 2}]);
        let rule = json!({"kind": "json:raw", "version": 1, "actions": {}});
        let i = Input {
            profile: "p",
            kind: "json:raw",
            select: &json!({}),
            sources: &sources,
            tool_version: "0.1.0",
            rule: &rule,
            policy: &Value::Null,
            time: "2025-01-01T00:00:00Z",
            manifest_sha256: Sha256::of(b"m"),
            rerun_hash: Sha256::of(b"r"),
            subjects: vec![
                ("z.tar.zst".into(), Sha256::of(b"z")),
                ("manifest.json".into(), Sha256::of(b"m")),
            ],
        };
        let bytes = statement(&i);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(canon::to_vec(&v), bytes);
        assert_eq!(
            subjects(&bytes).unwrap(),
            vec![("manifest.json".into(), Sha256::of(b"m")), ("z.tar.zst".into(), Sha256::of(b"z"))]
        );
        assert_eq!(v["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["dirHash"], "ab");
        assert!(subjects(b"{\"_type\":\"x\"}").is_err());
    }
}
