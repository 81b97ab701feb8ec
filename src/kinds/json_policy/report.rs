//! `policy-report` v1: the policy's members of a json:policy bundle.
//!
//! Inputs: `evaluations`, `consensus`, `summary` (every shard's
//! `policy-evaluate` outputs, in shard order). Parameters: `policy` (the
//! snapshot), `level` (zstd), `mtime` (the pinned time, in tar headers).
//! Outputs: `frames`, the members as concatenated zstd frames (one per
//! member: tar header, data, padding), in path order:
//! `consensus/vex_consensus.jsonl.zst`, `policy/evaluations.jsonl.zst`,
//! `policy/snapshot.json`, `policy/summary.jsonl`; `entries`, their
//! manifest entries (`records` = JSON lines, summed from the summaries; 1
//! for the snapshot). The `.jsonl.zst` members are the shards' zstd frames
//! concatenated, never recompressed (`zstd -d` reads them as one stream),
//! so a re-evaluated shard costs a copy of the others; their tar frames
//! are level 1, since compressing compressed bytes again gains nothing.
//!
//! Memory: the members are streamed (only the summaries are held).

use std::io::Write;

use serde_json::{json, Value};

use crate::actions::{Action, ActionCx, ActionError, Sha256Writer};
use crate::canon;
use crate::digest::Sha256;
use crate::formats::{manifest::Entry, tar};

#[derive(Debug)]
pub struct PolicyReport;

/// The bytes of every blob of `input`, in order (each a whole file).
fn blobs_of(cx: &ActionCx<'_>, input: &str) -> Result<Vec<u8>, ActionError> {
    let mut out = Vec::new();
    for b in cx.blobs(input) {
        out.extend_from_slice(&cx.cache.read(&b)?);
    }
    Ok(out)
}

/// One member made of the blobs of `input` concatenated (the per-shard
/// zstd frames, which read as one stream), framed as it streams: its tar
/// frame goes to `frames`, its entry is returned.
fn streamed_member(
    cx: &ActionCx<'_>,
    input: &str,
    path: &str,
    records: u64,
    mtime: i64,
    frames: &mut std::fs::File,
) -> Result<Entry, ActionError> {
    let blobs = cx.blobs(input);
    let mut size = 0u64;
    for b in &blobs {
        // verified whole first (as every blob read), which also gives its size
        size += cx.cache.copy_to(b, &mut std::io::sink())?;
    }
    let io = |e: std::io::Error| ActionError::Failed(format!("{path}: {e}"));
    let pad = (tar::BLOCK as u64 - size % tar::BLOCK as u64) % tar::BLOCK as u64;
    let mut z = tar::frame_writer(&mut *frames, 1, tar::BLOCK as u64 + size + pad).map_err(io)?;
    z.write_all(&tar::header(path, size, mtime).map_err(ActionError::Failed)?).map_err(io)?;
    let mut data = Sha256Writer::new(z);
    for b in &blobs {
        std::io::copy(&mut cx.cache.reader(b)?, &mut data).map_err(io)?;
    }
    let sha = data.digest();
    let mut z = data.inner;
    z.write_all(&vec![0u8; pad as usize]).map_err(io)?;
    z.finish().map_err(io)?;
    Ok(Entry { path: path.to_string(), sha256: sha, bytes: size, records })
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
        let summary = blobs_of(cx, "summary")?;
        let (mut n_eval, mut n_cons, mut n_sum) = (0u64, 0u64, 0u64);
        for l in summary.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: Value =
                serde_json::from_slice(l).map_err(|e| ActionError::Failed(format!("summary: {e}")))?;
            n_eval += v["findings"].as_u64().unwrap_or(0);
            n_cons += v["vexConsensus"].as_u64().unwrap_or(0);
            n_sum += 1;
        }
        let path = cx.out.join("frames");
        let mut frames = std::fs::File::create(&path).map_err(|e| ActionError::io(&path, e))?;
        let mut entries = vec![
            streamed_member(
                cx,
                "consensus",
                "consensus/vex_consensus.jsonl.zst",
                n_cons,
                mtime,
                &mut frames,
            )?,
            streamed_member(cx, "evaluations", "policy/evaluations.jsonl.zst", n_eval, mtime, &mut frames)?,
        ];
        for (p, data, records) in [
            ("policy/snapshot.json", canon::to_pretty(&snapshot), 1),
            ("policy/summary.jsonl", summary, n_sum),
        ] {
            let member = tar::member(p, &data, mtime).map_err(ActionError::Failed)?;
            frames
                .write_all(&tar::frame(&member, level).map_err(ActionError::Failed)?)
                .map_err(|e| ActionError::io(&path, e))?;
            entries.push(Entry {
                path: p.to_string(),
                sha256: Sha256::of(&data),
                bytes: data.len() as u64,
                records,
            });
        }
        frames.flush().map_err(|e| ActionError::io(&path, e))?;
        cx.write("entries", &canon::to_vec(&serde_json::to_value(&entries).expect("serialisable")))?;
        Ok(())
    }
}
