//! `policy-index` v1 and `policy-slice` v1: the advisory index json:policy
//! matches over, and the part of it one SBOM shard needs.
//!
//! `policy-index` (once per profile): input `rows` (every shard's
//! `policy-facts` rows, i.e. `trivy-convert`'s); merges them in key order
//! and merges rows of one slot exactly as the trivy:db assembly does
//! (`RawRow::merge`), so the index holds what `trivy.db` would; writes
//! output `index` (zstd) with the lines `crate::policy::matcher` reads:
//! `A` for rows of language advisory buckets (`<prefix>::<source>`), `S`
//! for their data sources, `V` for the severity fields of vulnerability
//! rows. OS buckets are left out (json:policy matches language packages).
//! Lines come in the rows' key order, so every `V` line follows every `A`
//! line (`vulnerability` sorts after every ecosystem prefix).
//!
//! `policy-slice` (per shard): inputs `packages` (the shard's lookup
//! keys) and `index`; output `rows`: the index lines of those packages,
//! every `S` line and the `V` lines of the vulnerabilities they name, in
//! index order. Shards with no packages write nothing and read nothing.
//! The evaluation keys on this output, so a changed advisory re-evaluates
//! only the shards whose slice it changes (early cutoff).
//!
//! Memory: one row at a time (the merge holds one line per input); a
//! slice holds the shard's keys and the vulnerability ids it names.

use std::collections::HashSet;
use std::io::{BufRead, Write};

use crate::actions::merge::{Merge, ROWS_WINDOW_LOG};
use crate::actions::{Action, ActionCx, ActionError};
use crate::kinds::trivy_db::model::{RawRow, DATA_SOURCE_BUCKET, ECOSYSTEMS, VULNERABILITY_BUCKET};
use crate::policy::matcher::{self, Line};

/// Both actions' code (they share this file).
const CODE: &[&str] = &[
    file!(),
    "src/actions/mod.rs",
    "src/actions/merge.rs",
    "src/canon.rs",
    "src/digest.rs",
    "src/kinds/trivy_db/model/",
    "src/formats/bbolt.rs",
    "src/shown.rs",
    "src/timefmt.rs",
    "src/versions.rs",
    "src/versions/",
    "src/policy/",
];

#[derive(Debug)]
pub struct PolicyIndex;

#[derive(Debug)]
pub struct PolicySlice;

fn zstd_writer(
    path: &std::path::Path,
) -> Result<zstd::stream::write::Encoder<'static, std::io::BufWriter<std::fs::File>>, ActionError> {
    let f = std::fs::File::create(path).map_err(|e| ActionError::io(path, e))?;
    let mut z = zstd::stream::write::Encoder::new(std::io::BufWriter::new(f), 3)
        .map_err(|e| ActionError::io(path, e))?;
    z.set_parameter(zstd::stream::raw::CParameter::WindowLog(ROWS_WINDOW_LOG))
        .map_err(|e| ActionError::io(path, e))?;
    Ok(z)
}

fn emit(row: &RawRow, out: &mut Vec<u8>) -> Result<(), ActionError> {
    let bad = |e: serde_json::Error| ActionError::Failed(format!("row {}/{}: {e}", row.bucket(), row.key()));
    let bucket = row.bucket();
    if bucket == VULNERABILITY_BUCKET {
        matcher::vuln_line(out, row.key(), &serde_json::from_slice(row.value()).map_err(bad)?);
    } else if bucket == DATA_SOURCE_BUCKET {
        if let Some((prefix, _)) = row.key().split_once("::") {
            if ECOSYSTEMS.iter().any(|e| e.prefix == prefix) {
                let v: serde_json::Value = serde_json::from_slice(row.value()).map_err(bad)?;
                matcher::source_line(out, row.key(), v["ID"].as_str().unwrap_or_default());
            }
        }
    } else if let Some((prefix, _)) = bucket.split_once("::") {
        if ECOSYSTEMS.iter().any(|e| e.prefix == prefix) {
            let v = serde_json::from_slice(row.value()).map_err(bad)?;
            matcher::advisory_line(out, prefix, row.package(), bucket, row.key(), &v);
        }
    }
    Ok(())
}

impl Action for PolicyIndex {
    fn id(&self) -> &'static str {
        "policy-index"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["rows"]
    }
    fn code(&self) -> &'static [&'static str] {
        CODE
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["index"]
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let path = cx.out.join("index");
        let mut z = zstd_writer(&path)?;
        let mut merge = Merge::open(cx.cache, &cx.blobs("rows"), 3)?;
        let mut pending: Option<RawRow> = None;
        let mut out = Vec::new();
        while let Some(line) = merge.next_line()? {
            let row = RawRow::decode(line).map_err(ActionError::Failed)?;
            match pending.as_mut() {
                Some(p) if p.same_slot(&row) => p.merge(&row).map_err(ActionError::Failed)?,
                _ => {
                    if let Some(p) = pending.replace(row) {
                        emit(&p, &mut out)?;
                        z.write_all(&out).map_err(|e| ActionError::io(&path, e))?;
                        out.clear();
                    }
                }
            }
        }
        if let Some(p) = pending {
            emit(&p, &mut out)?;
            z.write_all(&out).map_err(|e| ActionError::io(&path, e))?;
        }
        z.finish().and_then(|mut w| w.flush()).map_err(|e| ActionError::io(&path, e))?;
        Ok(())
    }
}

impl Action for PolicySlice {
    fn id(&self) -> &'static str {
        "policy-slice"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["packages", "index"]
    }
    fn code(&self) -> &'static [&'static str] {
        CODE
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["rows"]
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let keys_blob = cx
            .blobs("packages")
            .first()
            .copied()
            .ok_or_else(|| ActionError::Failed("no packages input".into()))?;
        let keys_bytes = cx.cache.read(&keys_blob)?;
        let keys: HashSet<(&str, &str)> = std::str::from_utf8(&keys_bytes)
            .map_err(|_| ActionError::Failed("packages: not UTF-8".into()))?
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .collect();
        let path = cx.out.join("rows");
        if keys.is_empty() {
            return cx.write("rows", b"");
        }
        let index =
            cx.blobs("index").first().copied().ok_or_else(|| ActionError::Failed("no index input".into()))?;
        cx.cache.copy_to(&index, &mut std::io::sink())?;
        let reader = zstd::stream::read::Decoder::new(cx.cache.reader(&index)?)
            .map_err(|e| ActionError::Failed(format!("index: {e}")))?;
        let mut reader = std::io::BufReader::with_capacity(1 << 16, reader);
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| ActionError::io(&path, e))?);
        let mut named: HashSet<String> = HashSet::new();
        let mut seen_vuln = false;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(|e| ActionError::Failed(format!("index: {e}")))? == 0 {
                break;
            }
            let keep = match Line::split(line.trim_end_matches('\n')) {
                Some(Line::Advisory { prefix, package, vuln, .. }) => {
                    if seen_vuln {
                        return Err(ActionError::Failed(
                            "index: an advisory line after vulnerability lines".into(),
                        ));
                    }
                    let hit = keys.contains(&(prefix, package));
                    if hit {
                        named.insert(vuln.to_string());
                    }
                    hit
                }
                Some(Line::Source { .. }) => true,
                Some(Line::Vuln { vuln, .. }) => {
                    seen_vuln = true;
                    named.contains(vuln)
                }
                None => return Err(ActionError::Failed("index: a malformed line".into())),
            };
            if keep {
                out.write_all(line.as_bytes()).map_err(|e| ActionError::io(&path, e))?;
            }
        }
        out.flush().map_err(|e| ActionError::io(&path, e))?;
        Ok(())
    }
}
