//! SPDX JSON documents: SPDX 2.2/2.3 (`spdxVersion`) and SPDX 3.0 JSON-LD
//! (`@context` + `@graph`).
//!
//! 2.x requires `spdxVersion` ("SPDX-2.x"), `SPDXID`, `name` and
//! `documentNamespace` (the id). 3.0 requires an SPDX `@context` and one
//! `SpdxDocument` element in `@graph` (its `spdxId` is the id).

use serde_json::Value;

use super::At;
use crate::select::RecordMeta;

pub fn meta(doc: &Value) -> Result<RecordMeta, String> {
    let root = At::root(doc);
    if let Some(v) = root.get("spdxVersion") {
        let version = v.str()?;
        if !version.starts_with("SPDX-2.") {
            return Err(format!("$.spdxVersion: unsupported version {version:?}"));
        }
        root.req_str("SPDXID")?;
        root.req_str("name")?;
        let id = root.req_str("documentNamespace")?.to_string();
        root.opt_arr("packages")?;
        let modified =
            root.get("creationInfo").map(|c| c.opt_str("created")).transpose()?.flatten().map(String::from);
        return Ok(RecordMeta { id, modified, ..Default::default() });
    }
    let ctx = root
        .get("@context")
        .ok_or("$: neither \"spdxVersion\" (SPDX 2) nor \"@context\" (SPDX 3) present")?;
    let ctx_text = ctx.v.to_string();
    if !ctx_text.contains("spdx.org/rdf/3") {
        return Err(format!("{}: not an SPDX 3 context", ctx.path));
    }
    let mut id = None;
    for el in root.req("@graph")?.arr()? {
        el.obj()?;
        if el.opt_str("type")? == Some("SpdxDocument") {
            if id.is_some() {
                return Err(format!("{}: a second SpdxDocument element", el.path));
            }
            id = Some(el.req_str("spdxId")?.to_string());
        }
    }
    let id = id.ok_or("$.@graph: no SpdxDocument element")?;
    Ok(RecordMeta { id, ..Default::default() })
}
