//! Alpine secdb, one package per document, as Trivy's own DB builder reads
//! it (aquasecurity/vuln-list `alpine/<release>/<repository>/<package>.json`):
//! `{"name", "secfixes": {"<fixed version>": ["CVE-…", …], "0": […]}}`,
//! optionally `distroversion` (`v3.18`).
//!
//! Required: `name` (a string) and `secfixes` (an object whose values are
//! arrays of strings). Checked when present: `distroversion` (a string).
//! The record id is `ALPINE-SECDB-<name>` (a document has none of its own;
//! the release is in its path), the ecosystem `Alpine`, the aliases every
//! `CVE-` / `GHSA-` token listed.

use serde_json::Value;

use super::At;
use crate::select::RecordMeta;

pub fn meta(doc: &Value) -> Result<RecordMeta, String> {
    let root = At::root(doc);
    let name = root.req_str("name")?;
    if name.is_empty() {
        return Err("$.name: empty".into());
    }
    root.opt_str("distroversion")?;
    let fixes = root.req("secfixes")?;
    let mut aliases = Vec::new();
    for (fixed, ids) in fixes.obj()? {
        let at = At { v: ids, path: format!("{}[{fixed:?}]", fixes.path) };
        for id in at.arr()? {
            let s = id.str()?;
            aliases.extend(
                s.split_whitespace()
                    .map(|t| t.replace("CVE_", "CVE-"))
                    .filter(|t| t.starts_with("CVE-") || t.starts_with("GHSA-")),
            );
        }
    }
    aliases.sort();
    aliases.dedup();
    Ok(RecordMeta {
        id: format!("ALPINE-SECDB-{name}"),
        aliases,
        ecosystems: vec!["Alpine".into()],
        packages: vec![name.to_string()],
        modified: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn meta_and_errors() {
        let m = meta(&json!({"name": "curl", "secfixes": {"8.1.0-r0": ["CVE-2023-28319 (+ regression fix)"], "0": ["CVE_2021-1"]}}))
            .unwrap();
        assert_eq!(m.id, "ALPINE-SECDB-curl");
        assert_eq!(m.aliases, vec!["CVE-2021-1", "CVE-2023-28319"]);
        assert!(meta(&json!({"secfixes": {}})).unwrap_err().contains("name"));
        let e = meta(&json!({"name": "x", "secfixes": {"1.0-r0": "CVE-1"}})).unwrap_err();
        assert!(e.contains("$.secfixes[\"1.0-r0\"]") && e.contains("array"), "{e}");
        assert!(meta(&json!({"name": "x", "secfixes": {"1.0-r0": [1]}})).unwrap_err().contains("string"));
    }
}
