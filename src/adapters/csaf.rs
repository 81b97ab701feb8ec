//! CSAF 2.x documents (<https://docs.oasis-open.org/csaf/csaf/v2.0/>), any
//! category (`csaf_vex`, `csaf_security_advisory`, vendor categories).
//!
//! Required: `document.category`, `document.csaf_version` ("2.0" or "2.1"),
//! `document.publisher`, `document.title`, `document.tracking.id`. When
//! present, `vulnerabilities[]` are objects.

use serde_json::Value;

use super::At;
use crate::select::RecordMeta;

pub fn meta(doc: &Value) -> Result<RecordMeta, String> {
    let root = At::root(doc);
    let d = root.req("document")?;
    d.obj()?;
    d.req_str("category")?;
    let version = d.req_str("csaf_version")?;
    if !matches!(version, "2.0" | "2.1") {
        return Err(format!("$.document.csaf_version: unsupported version {version:?}"));
    }
    d.req("publisher")?.obj()?;
    d.req_str("title")?;
    let tracking = d.req("tracking")?;
    let id = tracking.req_str("id")?.to_string();
    let mut aliases = Vec::new();
    for v in root.opt_arr("vulnerabilities")? {
        v.obj()?;
        if let Some(cve) = v.opt_str("cve")? {
            aliases.push(cve.to_string());
        }
    }
    let modified = tracking.opt_str("current_release_date")?.map(String::from);
    Ok(RecordMeta { id, aliases, modified, ..Default::default() })
}
