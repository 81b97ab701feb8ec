//! OpenVEX documents (<https://github.com/openvex/spec>), namespaces
//! `https://openvex.dev/ns` with or without a version suffix.
//!
//! Required: `@context` (an OpenVEX namespace), `@id`, `statements[]`, each
//! with a `vulnerability` (a string in v0.0.1, an object with `name` later)
//! and a `status` among the four the spec defines.

use serde_json::Value;

use super::At;
use crate::select::RecordMeta;

const STATUSES: &[&str] = &["not_affected", "affected", "fixed", "under_investigation"];

pub fn meta(doc: &Value) -> Result<RecordMeta, String> {
    let root = At::root(doc);
    let ctx = root.req_str("@context")?;
    if !ctx.starts_with("https://openvex.dev/ns") {
        return Err(format!("$.@context: {ctx:?} is not an OpenVEX namespace"));
    }
    let id = root.req_str("@id")?.to_string();
    let mut aliases = Vec::new();
    for st in root.req("statements")?.arr()? {
        st.obj()?;
        let vuln = st.req("vulnerability")?;
        let name = match vuln.v {
            Value::String(s) => s.as_str(),
            Value::Object(_) => vuln.req_str("name")?,
            _ => return Err(format!("{}: expected a string or an object", vuln.path)),
        };
        if !aliases.iter().any(|a| a == name) {
            aliases.push(name.to_string());
        }
        let status = st.req_str("status")?;
        if !STATUSES.contains(&status) {
            return Err(format!("{}.status: unknown status {status:?}", st.path));
        }
    }
    let modified = root.opt_str("last_updated")?.or(root.opt_str("timestamp")?).map(String::from);
    Ok(RecordMeta { id, aliases, modified, ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_status() {
        let d = json!({"@context":"https://openvex.dev/ns/v0.2.0","@id":"x","statements":[
            {"vulnerability":{"name":"CVE-1"},"status":"broken"}]});
        assert!(meta(&d).unwrap_err().contains("$.statements[0].status"));
    }
}
