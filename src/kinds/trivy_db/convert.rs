//! `trivy-convert` v4: one shard's advisories → sorted Trivy DB rows.
//!
//! Input `records` (from `parse-documents`). Parameters: `source`,
//! `format` (`osv`, `nodejs-advisory` or `alpine-secdb`), `data-source` (`{ID, Name, URL}`),
//! `select` (profile selectors), `path` and `origin` (to name rejected
//! files as `parse-documents` does). Outputs: `rows` (see
//! `model`: sorted, merged per slot, packed for
//! [`crate::actions::merge::Merge`]) and `rejected`: documents that parse but cannot
//! become DB rows (an unknown ecosystem, an unparseable version or range,
//! a name that cannot be normalised, a key over bbolt's limit, rows over
//! the document's byte budget: `model`), each `{source, path,
//! reason}` with the advisory id (its first 80 characters, escaped as
//! `crate::shown::name` does) in the reason; `warnings`: parts of
//! documents left out while the rest became rows, each `{source, path,
//! message}` named the same way (the driver replays them from the cache).
//! Like `parse-documents` the action never fails on a bad document: the
//! driver stops the build (exit 2) or, with `--allow-invalid`, lists it in
//! the manifest's `rejected[]`.

use serde_json::Value;

use super::model::{self as trivy, DataSource};
use crate::actions::merge::pack_rows;
use crate::actions::{Action, ActionCx, ActionError, RecordLine};
use crate::canon;
use crate::formats::manifest::{Rejected, Warning};
use crate::select::Selectors;

/// The most encoded row bytes one shard's step holds before sorting them
/// (real shards hold a few MiB); a document that would pass it is
/// rejected, naming the source, so memory stays bounded per step.
pub const MAX_SHARD_ROW_BYTES: usize = 128 << 20;

#[derive(Debug)]
pub struct TrivyConvert;

impl Action for TrivyConvert {
    fn id(&self) -> &'static str {
        "trivy-convert"
    }
    fn version(&self) -> u32 {
        // v2: review fixes (event order, merge pruning, Node.js patched ranges, versions union)
        // v3: names over bbolt's key limit, ids with control characters and row floods rejected
        4 // v4: one data-source row per bucket and shard (the first), not one per document
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["records"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["source", "format", "data-source", "path", "origin"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/actions/mod.rs",
            "src/canon.rs",
            "src/digest.rs",
            "src/actions/parse.rs",
            "src/actions/merge.rs",
            "src/adapters/",
            "src/select.rs",
            "src/timefmt.rs",
            "src/shown.rs",
            "src/formats/manifest.rs",
            "src/kinds/trivy_db/model/",
            "src/versions.rs",
            "src/versions/",
            "src/profile.rs",
            "src/formats/bbolt.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["rows", "rejected", "warnings"]
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let c = convert_shard(cx)?;
        cx.write("rows", &c.rows)?;
        cx.write("rejected", &canon::to_vec(&serde_json::to_value(&c.rejected).expect("serialisable")))?;
        cx.write("warnings", &canon::to_vec(&serde_json::to_value(&c.warnings).expect("serialisable")))?;
        Ok(())
    }
}

/// One shard's conversion: packed sorted rows, rejected documents, warnings (sorted).
pub struct Converted {
    pub rows: Vec<u8>,
    pub rejected: Vec<Rejected>,
    pub warnings: Vec<Warning>,
}

/// Convert the shard of input `records` with the parameters `trivy-convert`
/// takes (`source`, `format`, `data-source`, `select`, `path`, `origin`):
/// what `trivy-convert` writes, for every kind that needs Trivy's rows
/// (json:policy matches over them).
pub fn convert_shard(cx: &ActionCx<'_>) -> Result<Converted, ActionError> {
    {
        let source = cx.param_str("source")?;
        let format = cx.param_str("format")?;
        let declared = cx.param_str("path")?;
        let origin = cx.param_str("origin")?;
        let ds: DataSource = serde_json::from_value(cx.params["data-source"].clone())
            .map_err(|e| ActionError::Failed(format!("parameter data-source: {e}")))?;
        let select = Selectors::from_json(cx.params.get("select").unwrap_or(&Value::Null))
            .map_err(ActionError::Failed)?;
        let failed = |e: std::io::Error| ActionError::Failed(format!("records blob: {e}"));
        let mut records = cx.records("records")?;
        let mut rows = Vec::new();
        let mut rejected = Vec::new();
        let mut warnings = Vec::new();
        let mut shard_bytes = 0usize;
        let mut line = Vec::new();
        loop {
            line.clear();
            if std::io::BufRead::read_until(&mut records, b'\n', &mut line).map_err(failed)? == 0 {
                break;
            }
            if line == b"\n" {
                continue;
            }
            let rl = RecordLine::split(&line)
                .ok_or_else(|| ActionError::Failed("malformed records blob".into()))?;
            // parsing the record amplifies it: reserve that from the step memory budget
            let mut held = crate::actions::MEMORY.acquire(crate::adapters::estimate_memory(rl.record));
            held.trim_on_release();
            if !select.is_empty() && !select.matches(&rl.meta().map_err(ActionError::Failed)?) {
                continue;
            }
            let record: Value =
                serde_json::from_slice(rl.record).map_err(|e| ActionError::Failed(format!("record: {e}")))?;
            let doc = &record["document"];
            let budget = trivy::row_budget(rl.record.len());
            let mut warned = Vec::new();
            let converted = match format {
                "osv" => trivy::osv::rows_warned(doc, source, &ds, budget, &mut warned),
                "nodejs-advisory" => trivy::nodejs::rows(doc, source, &ds, budget),
                "alpine-secdb" => trivy::alpine::rows(
                    doc,
                    record["path"].as_str().unwrap_or_default(),
                    source,
                    &ds,
                    budget,
                    &mut warned,
                ),
                other => {
                    return Err(ActionError::Failed(format!("trivy-convert cannot read format {other:?}")))
                }
            };
            // the shard's rows stay in memory until they are sorted: bounded too
            let converted = converted.and_then(|r| {
                let bytes: usize = r.iter().map(trivy::Row::encoded_len).sum();
                if shard_bytes.saturating_add(bytes) > MAX_SHARD_ROW_BYTES {
                    return Err(format!(
                        "$: the DB rows of this source shard would take more than {MAX_SHARD_ROW_BYTES} \
                         bytes with this document; give source {source} more shards (`shards = N`)"
                    ));
                }
                shard_bytes += bytes;
                Ok(r)
            });
            let path = record["path"].as_str().unwrap_or_default();
            let shown = crate::actions::shown_path(declared, origin, path);
            // cut and escaped: a huge or hostile id must not make a huge or forged message
            let id: String = record["id"].as_str().unwrap_or_default().chars().take(80).collect();
            let id = crate::shown::name(&id);
            match converted {
                Ok(r) => {
                    rows.extend(r);
                    warnings.extend(warned.into_iter().map(|w| Warning {
                        source: source.to_string(),
                        path: shown.clone(),
                        message: format!("{id}: {w}"),
                    }));
                }
                Err(reason) => {
                    rejected.push(Rejected {
                        source: source.to_string(),
                        path: shown,
                        reason: format!("{id}: {reason}"),
                    });
                }
            }
        }
        let rows = trivy::sort_and_merge(rows);
        let mut out = Vec::new();
        for r in &rows {
            r.encode(&mut out);
        }
        rejected.sort();
        warnings.sort();
        Ok(Converted { rows: pack_rows(&out)?, rejected, warnings })
    }
}
