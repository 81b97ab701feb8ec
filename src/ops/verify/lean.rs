//! What `verify` parses out of an export's JSON files, and nothing more.
//!
//! A `serde_json::Value` costs up to ~30 times the text it comes from
//! (`[0,0,0,...]`), so `verify` never builds one from export files: the
//! manifest and the provenance statement are read into these structs,
//! whose unused fields are skipped (`IgnoredAny`, no allocation). The
//! memory for a file is then about its size, and sizes are capped before
//! reading (see `read`).
//!
//! The manifest's signed payload is compared without parsing either side:
//! [`same_minified`] checks that the payload is `manifest.json` with the
//! whitespace between tokens removed. Our manifests are sorted-key pretty
//! JSON (`canon::to_pretty`), so that *is* their canonical form; a
//! manifest in any other form fails, which only ever happens to one we
//! did not write.

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::digest::Sha256;
use crate::formats::manifest::{Entry, FileRef};
use crate::formats::provenance::{SLSA_PROVENANCE_V1, STATEMENT_TYPE};

/// `manifest.json`, as much as `verify` needs (the same required fields
/// as `formats::manifest::Manifest`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[allow(dead_code)]
    pub schema_version: u32,
    pub profile: String,
    /// Picks the kind's verify hook.
    pub kind: String,
    #[allow(dead_code)]
    pub selectors: IgnoredAny,
    #[allow(dead_code)]
    pub sources: IgnoredAny,
    pub created_at: String,
    #[allow(dead_code)]
    pub tool: IgnoredAny,
    pub bundle: FileRef,
    pub contents: Vec<Entry>,
    #[allow(dead_code)]
    pub rejected: IgnoredAny,
    pub rerun_hash: Sha256,
    #[serde(default)]
    pub files: Vec<FileRef>,
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    ty: Option<String>,
    #[serde(rename = "predicateType")]
    predicate_type: Option<String>,
    subject: Option<Vec<Subject>>,
}

#[derive(Deserialize)]
struct Subject {
    name: Option<String>,
    digest: Option<DigestSet>,
}

#[derive(Deserialize)]
struct DigestSet {
    sha256: Option<String>,
}

/// The subjects `(name, sha256)` of an in-toto Statement v1 with a SLSA
/// Provenance v1 predicate (as `formats::provenance::subjects`, lean).
pub fn subjects(statement: &[u8]) -> Result<Vec<(String, Sha256)>, String> {
    let st: Statement = serde_json::from_slice(statement).map_err(|e| format!("not JSON: {e}"))?;
    if st.ty.as_deref() != Some(STATEMENT_TYPE) {
        return Err(format!("_type is not {STATEMENT_TYPE}"));
    }
    if st.predicate_type.as_deref() != Some(SLSA_PROVENANCE_V1) {
        return Err(format!("predicateType is not {SLSA_PROVENANCE_V1}"));
    }
    let list = st.subject.ok_or("subject: missing")?;
    if list.is_empty() {
        return Err("subject: empty".into());
    }
    list.into_iter()
        .enumerate()
        .map(|(k, s)| {
            let name = s.name.ok_or(format!("subject[{k}].name missing"))?;
            let d = s
                .digest
                .and_then(|d| d.sha256)
                .and_then(|h| Sha256::parse_hex(&h))
                .ok_or(format!("subject[{k}].digest.sha256 missing or malformed"))?;
            Ok((name, d))
        })
        .collect()
}

/// Whether `minified` is `json` without the whitespace between tokens
/// (whitespace inside strings kept). Streams both; allocates nothing.
pub fn same_minified(json: &[u8], minified: &[u8]) -> bool {
    let (mut in_str, mut escaped) = (false, false);
    let mut out = minified.iter();
    for &b in json {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        } else if b == b'"' {
            in_str = true;
        }
        if out.next() != Some(&b) {
            return false;
        }
    }
    out.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minified_matches_canonical_of_pretty() {
        let v = serde_json::json!({"a": [1, {"b": "x y\n\"z\" \\"}], "c": null, "d": 1.5});
        let pretty = crate::canon::to_pretty(&v);
        assert!(same_minified(&pretty, &crate::canon::to_vec(&v)));
        assert!(!same_minified(&pretty, b"{\"a\":[1]}"));
        assert!(!same_minified(b"{\"a\": \"x y\"}", b"{\"a\":\"xy\"}"));
        assert!(!same_minified(b"{}", b"{} "));
    }
}
