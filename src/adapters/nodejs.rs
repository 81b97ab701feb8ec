//! Node.js security-wg npm advisories (github.com/nodejs/security-wg,
//! `vuln/npm/<id>.json`).
//!
//! Required: `id` (a number, or a string of digits), `module_name` and
//! `vulnerable_versions` (strings). Checked when present: `cves` (strings),
//! `patched_versions` and `updated_at` (strings). The record id is
//! `NSWG-ECO-<id>`, the ecosystem `npm`.

use serde_json::Value;

use super::At;
use crate::select::RecordMeta;

pub fn meta(doc: &Value) -> Result<RecordMeta, String> {
    let root = At::root(doc);
    let id = root.req("id")?;
    let num = match id.v {
        Value::Number(n) if n.as_u64().is_some() => n.to_string(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.clone(),
        _ => return Err(format!("{}: expected an advisory number", id.path)),
    };
    let module = root.req_str("module_name")?;
    root.req_str("vulnerable_versions")?;
    root.opt_str("patched_versions")?;
    let modified = root.opt_str("updated_at")?.map(str::to_string);
    let mut aliases = Vec::new();
    for c in root.opt_arr("cves")? {
        aliases.push(c.str()?.to_string());
    }
    Ok(RecordMeta {
        id: format!("NSWG-ECO-{num}"),
        aliases,
        ecosystems: vec!["npm".into()],
        packages: vec![module.to_string()],
        modified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn meta_and_errors() {
        let m = meta(&json!({"id": 8, "module_name": "x", "vulnerable_versions": "<1", "cves": ["CVE-1"]}))
            .unwrap();
        assert_eq!(m.id, "NSWG-ECO-8");
        assert_eq!(m.aliases, vec!["CVE-1"]);
        assert!(meta(&json!({"id": "a", "module_name": "x", "vulnerable_versions": "<1"}))
            .unwrap_err()
            .contains("$.id"));
        assert!(meta(&json!({"id": 1, "vulnerable_versions": "<1"})).unwrap_err().contains("module_name"));
    }
}
