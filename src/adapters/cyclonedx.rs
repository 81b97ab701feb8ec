//! CycloneDX JSON BOMs (<https://cyclonedx.org/specification/overview/>),
//! spec 1.2 to 1.6, SBOMs and VEX BOMs alike.
//!
//! Required: `bomFormat` = "CycloneDX", `specVersion` (string). The id is
//! `serialNumber` (+ `#version`) when present; otherwise the caller's
//! content-derived fallback, since the spec makes `serialNumber` optional.

use serde_json::Value;

use super::At;
use crate::select::RecordMeta;

pub fn meta(doc: &Value) -> Result<RecordMeta, String> {
    let root = At::root(doc);
    let fmt = root.req_str("bomFormat")?;
    if fmt != "CycloneDX" {
        return Err(format!("$.bomFormat: expected \"CycloneDX\", found {fmt:?}"));
    }
    root.req_str("specVersion")?;
    root.opt_arr("components")?;
    let id = match root.opt_str("serialNumber")? {
        Some(s) => match root.get("version").and_then(|v| v.v.as_u64()) {
            Some(v) => format!("{s}#{v}"),
            None => s.to_string(),
        },
        None => String::new(),
    };
    let modified =
        root.get("metadata").map(|m| m.opt_str("timestamp")).transpose()?.flatten().map(String::from);
    Ok(RecordMeta { id, modified, ..Default::default() })
}
