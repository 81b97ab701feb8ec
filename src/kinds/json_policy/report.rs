//! `policy-report` v1: the policy's members of a json:policy bundle.
//!
//! Inputs: `evaluations`, `consensus`, `summary` (every shard's
//! `policy-evaluate` outputs, in shard order). Parameters: `policy` (the
//! snapshot), `level` (zstd), `mtime` (the pinned time, in tar headers).
//! Outputs: `frames`, the members as concatenated zstd frames (one per
//! member: tar header, data, padding), in path order:
//! `consensus/vex_consensus.jsonl.zst`, `policy/evaluations.jsonl.zst`,
//! `policy/snapshot.json`, `policy/summary.jsonl`; `entries`, their
//! manifest entries (`records` = JSON lines; 1 for the snapshot). The
//! `.jsonl.zst` members are single zstd frames of the JSONL
//! (`zstd -d` reads them); their tar frames are stored at level 1, since
//! compressing compressed bytes again gains nothing.
//!
//! Memory: the compressed members are held whole (they are a fraction of
//! the JSONL, which is streamed through the compressor).

use std::io::Write;

use serde_json::{json, Value};

use crate::actions::{Action, ActionCx, ActionError};
use crate::canon;
use crate::digest::Sha256;
use crate::formats::{manifest::Entry, tar};

#[derive(Debug)]
pub struct PolicyReport;

fn concat_lines(cx: &ActionCx<'_>, input: &str) -> Result<(Vec<u8>, u64), ActionError> {
    let mut out = Vec::new();
    let mut lines = 0;
    for b in cx.blobs(input) {
        let bytes = cx.cache.read(&b)?;
        lines += bytes.iter().filter(|&&c| c == b'\n').count() as u64;
        out.extend_from_slice(&bytes);
    }
    Ok((out, lines))
}

fn compressed(cx: &ActionCx<'_>, input: &str, level: i32) -> Result<(Vec<u8>, u64), ActionError> {
    let mut z = zstd::stream::write::Encoder::new(Vec::new(), level)
        .map_err(|e| ActionError::Failed(e.to_string()))?;
    let mut lines = 0;
    for b in cx.blobs(input) {
        let bytes = cx.cache.read(&b)?;
        lines += bytes.iter().filter(|&&c| c == b'\n').count() as u64;
        z.write_all(&bytes).map_err(|e| ActionError::Failed(e.to_string()))?;
    }
    Ok((z.finish().map_err(|e| ActionError::Failed(e.to_string()))?, lines))
}

impl Action for PolicyReport {
    fn id(&self) -> &'static str {
        "policy-report"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["evaluations", "consensus", "summary"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["policy", "level", "mtime"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/actions/mod.rs",
            "src/canon.rs",
            "src/digest.rs",
            "src/formats/manifest.rs",
            "src/shown.rs",
            "src/formats/tar.rs",
            "src/formats/gzip.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["frames", "entries"]
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let level = cx.param_i64("level")? as i32;
        let mtime = cx.param_i64("mtime")?;
        let snapshot: Value = json!({"version": "json-policy/v1", "policy": cx.params["policy"]});
        let (evaluations, n_eval) = compressed(cx, "evaluations", level)?;
        let (consensus, n_cons) = compressed(cx, "consensus", level)?;
        let (summary, n_sum) = concat_lines(cx, "summary")?;
        let members: [(&str, Vec<u8>, u64, i32); 4] = [
            ("consensus/vex_consensus.jsonl.zst", consensus, n_cons, 1),
            ("policy/evaluations.jsonl.zst", evaluations, n_eval, 1),
            ("policy/snapshot.json", canon::to_pretty(&snapshot), 1, level),
            ("policy/summary.jsonl", summary, n_sum, level),
        ];
        let mut frames = Vec::new();
        let mut entries = Vec::new();
        for (path, data, records, lvl) in members {
            let member = tar::member(path, &data, mtime).map_err(ActionError::Failed)?;
            frames.extend(tar::frame(&member, lvl).map_err(ActionError::Failed)?);
            entries.push(Entry {
                path: path.to_string(),
                sha256: Sha256::of(&data),
                bytes: data.len() as u64,
                records,
            });
        }
        cx.write("frames", &frames)?;
        cx.write("entries", &canon::to_vec(&serde_json::to_value(&entries).expect("serialisable")))?;
        Ok(())
    }
}
