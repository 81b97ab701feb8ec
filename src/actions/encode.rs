//! `encode-member` v2: select records and encode one bundle member.
//!
//! Input `records` (from `parse-documents`). Parameters: `member` (path
//! inside the bundle), `level` (zstd), `select` (profile selectors; applied
//! to `advisories` members only) and `mtime` (the pinned time, written in
//! the tar header).
//!
//! Outputs: `frame`, one zstd frame holding the tar header, the JSONL and
//! its padding (empty when no record is selected); `entry`, canonical JSON
//! `{path, sha256, bytes, records}` of the JSONL.

use super::{parse::RecordLine, Action, ActionCx, ActionError};
use crate::canon;
use crate::digest::Sha256;
use crate::formats::{manifest::Entry, tar};
use crate::select::Selectors;

#[derive(Debug)]
pub struct EncodeMember;

impl Action for EncodeMember {
    fn id(&self) -> &'static str {
        "encode-member"
    }
    fn version(&self) -> u32 {
        2 // v2: zstd window capped at 2 MiB
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["records"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["member", "level"]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["frame", "entry"]
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let member = cx.param_str("member")?.to_string();
        let level = cx.param_i64("level")? as i32;
        let mtime = cx.params.get("mtime").and_then(|v| v.as_i64()).unwrap_or(0);
        let select = Selectors::from_json(cx.params.get("select").unwrap_or(&serde_json::Value::Null))
            .map_err(ActionError::Failed)?;
        let filtering = member.starts_with("advisories/") && !select.is_empty();
        let blob = cx
            .blobs("records")
            .first()
            .copied()
            .ok_or_else(|| ActionError::Failed("no records input".into()))?;
        let packed = cx.cache.read(&blob)?;
        let records =
            zstd::decode_all(&packed[..]).map_err(|e| ActionError::Failed(format!("records blob: {e}")))?;
        drop(packed);
        // the member is built in place: header slot, JSONL, padding
        let mut buf = vec![0u8; tar::BLOCK];
        buf.reserve(records.len() + tar::BLOCK);
        let mut count = 0u64;
        for line in records.split_inclusive(|&b| b == b'\n') {
            let rl = RecordLine::split(line)
                .ok_or_else(|| ActionError::Failed("malformed records blob".into()))?;
            if filtering && !select.matches(&rl.meta().map_err(ActionError::Failed)?) {
                continue;
            }
            buf.extend_from_slice(rl.record);
            count += 1;
        }
        drop(records);
        let data = &buf[tar::BLOCK..];
        let entry = Entry {
            path: member.clone(),
            sha256: Sha256::of(data),
            bytes: data.len() as u64,
            records: count,
        };
        let frame = if count == 0 {
            Vec::new()
        } else {
            let header = tar::header(&member, entry.bytes, mtime).map_err(ActionError::Failed)?;
            buf[..tar::BLOCK].copy_from_slice(&header);
            let pad = (tar::BLOCK - entry.bytes as usize % tar::BLOCK) % tar::BLOCK;
            buf.resize(buf.len() + pad, 0);
            tar::frame(&buf, level).map_err(ActionError::Failed)?
        };
        cx.write("frame", &frame)?;
        cx.write("entry", &canon::to_vec_of(&entry))?;
        Ok(())
    }
}
