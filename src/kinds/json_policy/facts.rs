//! `policy-facts` v1: what one source shard contributes to json:policy.
//!
//! Input `records` (from `parse-documents`). Parameters: `source`,
//! `format`, `type` (`{shard.type}`), `data-source`, `path`, `origin` (as
//! `trivy-convert` takes them). Outputs, each empty for the other types:
//! - `rows`: an advisory shard's Trivy DB rows, exactly what
//!   `trivy-convert` writes ([`convert_shard`]: one conversion for both kinds);
//! - `packages`: an SBOM shard's lookup keys, sorted unique lines
//!   `<bucket prefix>\t<normalised name>` (`keys::lookup_key`);
//! - `sboms`: the SBOMs to evaluate (zstd), one canonical line `{path,
//!   document}` each in the shard's order, so that evaluation steps key on
//!   them alone (a shard of advisories has an empty list, and its
//!   evaluation step never re-runs);
//! - `vex`: the VEX documents of a VEX shard, and of a CycloneDX shard the
//!   documents with a non-empty `vulnerabilities[]` (CycloneDX VEX), one
//!   canonical line `{"source": "<source>/<path>", "document": …}` each,
//!   in the shard's order;
//! - `rejected`: documents Trivy would refuse (a VEX document it cannot
//!   load, an SPDX SBOM whose purl does not parse), named as
//!   `parse-documents` names them; `warnings`: the conversion's.
//!
//! Memory: one record at a time, plus the shard's rows (bounded as
//! `trivy-convert` bounds them) or its package keys.

use std::collections::BTreeSet;
use std::io::BufRead;

use serde_json::{json, Value};

use super::keys::{is_cyclonedx_vex, lookup_key};
use crate::actions::{Action, ActionCx, ActionError, RecordLine};
use crate::canon;
use crate::formats::manifest::Rejected;
use crate::kinds::trivy_db::convert::convert_shard;
use crate::policy::{sbom, vex};

#[derive(Debug)]
pub struct PolicyFacts;

impl Action for PolicyFacts {
    fn id(&self) -> &'static str {
        "policy-facts"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["records"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["source", "format", "type", "data-source", "path", "origin"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/actions/mod.rs",
            "src/actions/parse.rs",
            "src/actions/merge.rs",
            "src/canon.rs",
            "src/digest.rs",
            "src/adapters/",
            "src/select.rs",
            "src/timefmt.rs",
            "src/shown.rs",
            "src/formats/manifest.rs",
            "src/formats/bbolt.rs",
            "src/kinds/trivy_db/convert.rs",
            "src/kinds/trivy_db/model/",
            "src/versions.rs",
            "src/versions/",
            "src/profile.rs",
            "src/policy/",
            "src/kinds/json_policy/keys.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["rows", "packages", "sboms", "vex", "rejected", "warnings"]
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let ty = cx.param_str("type")?;
        let (mut rows, mut rejected, mut warnings) =
            (crate::actions::merge::pack_rows(b"")?, Vec::new(), Vec::new());
        let mut packages = BTreeSet::new();
        let mut vex_lines = Vec::new();
        let mut sbom_lines = Vec::new();
        if ty == "advisories" {
            let c = convert_shard(cx)?;
            (rows, rejected, warnings) = (c.rows, c.rejected, c.warnings);
        } else {
            let source = cx.param_str("source")?;
            let format = cx.param_str("format")?;
            let declared = cx.param_str("path")?;
            let origin = cx.param_str("origin")?;
            let failed = |e: std::io::Error| ActionError::Failed(format!("records blob: {e}"));
            let mut records = cx.records("records")?;
            let mut line = Vec::new();
            let any_cdx = json!({"bomFormat": "CycloneDX"});
            loop {
                line.clear();
                if records.read_until(b'\n', &mut line).map_err(failed)? == 0 {
                    break;
                }
                let Some(rl) = RecordLine::split(&line) else { continue };
                let mut held = crate::actions::MEMORY.acquire(crate::adapters::estimate_memory(rl.record));
                held.trim_on_release();
                let record: Value = serde_json::from_slice(rl.record)
                    .map_err(|e| ActionError::Failed(format!("record: {e}")))?;
                let path = record["path"].as_str().unwrap_or_default();
                let doc = &record["document"];
                let reject = |reason: String| Rejected {
                    source: source.to_string(),
                    path: crate::actions::shown_path(declared, origin, path),
                    reason,
                };
                let name = format!("{source}/{path}");
                let is_vex = ty == "vex" || (format == "cyclonedx" && is_cyclonedx_vex(doc));
                if is_vex {
                    match vex::load(doc, &name, &any_cdx) {
                        Ok(_) => {
                            vex_lines.extend(canon::to_vec(&json!({"source": name, "document": doc})));
                            vex_lines.push(b'\n');
                        }
                        Err(e) => rejected.push(reject(format!("a VEX document Trivy cannot load: {e}"))),
                    }
                }
                if ty == "sboms" {
                    match sbom::packages(doc) {
                        // a CycloneDX VEX document alone is applied, not evaluated
                        Ok(list) if list.is_empty() && is_vex => {}
                        Ok(list) => {
                            packages.extend(list.iter().filter_map(lookup_key));
                            sbom_lines.extend(canon::to_vec(&json!({"path": path, "document": doc})));
                            sbom_lines.push(b'\n');
                        }
                        // a CycloneDX VEX document alone is not an SBOM to evaluate
                        Err(_) if is_vex => {}
                        Err(e) => rejected.push(reject(format!("an SBOM Trivy cannot scan: {e}"))),
                    }
                }
            }
        }
        let mut keys = Vec::new();
        for (p, n) in &packages {
            keys.extend_from_slice(format!("{p}\t{n}\n").as_bytes());
        }
        cx.write("rows", &rows)?;
        cx.write("packages", &keys)?;
        cx.write("vex", &vex_lines)?;
        cx.write(
            "sboms",
            &zstd::bulk::compress(&sbom_lines, 3).map_err(|e| ActionError::Failed(e.to_string()))?,
        )?;
        rejected.sort();
        cx.write("rejected", &canon::to_vec(&serde_json::to_value(&rejected).expect("serialisable")))?;
        cx.write("warnings", &canon::to_vec(&serde_json::to_value(&warnings).expect("serialisable")))?;
        Ok(())
    }
}
