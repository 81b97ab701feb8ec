//! `encode-member` v4: select records and encode one bundle member.
//!
//! Input `records` (from `parse-documents`). Parameters: `member` (path
//! inside the bundle), `type` (the records' type, `{shard.type}`: a typed
//! [`RecordType`], never read from the member's name), `level` (zstd),
//! `select` (profile selectors; applied to the types they narrow,
//! [`RecordType::selectable`]) and `mtime` (the pinned time, written in
//! the tar header).
//!
//! Outputs: `frame`, one zstd frame holding the tar header, the JSONL and
//! its padding (empty when no record is selected); `entry`, canonical JSON
//! `{path, sha256, bytes, records}` of the JSONL.
//!
//! Memory: one record line at a time. The records blob is verified as a
//! stream, then decoded as a stream; selected records go to an unnamed
//! temp file (hashed on the way). A member up to [`ONE_SHOT_MAX`] bytes is
//! framed in one shot by [`tar::frame`] (the bytes every earlier version
//! wrote); a larger one is compressed from the temp file as a stream with
//! its size pledged (same parameters; zstd's streaming output may differ
//! from one-shot output, so the choice depends on the size alone). The
//! zstd window also follows the size alone ([`tar::window_log`]).

use std::io::{BufRead, Write};

use crate::actions::{Action, ActionCx, ActionError, RecordLine, Sha256Writer};
use crate::adapters::RecordType;
use crate::canon;
use crate::formats::{manifest::Entry, tar};
use crate::select::Selectors;

#[derive(Debug)]
pub struct EncodeMember;

/// Test-only (tests/fingerprint.rs): with the `fingerprint-probe` feature
/// this file, and so this action's code fingerprint, differs while its
/// output bytes do not.
#[cfg(feature = "fingerprint-probe")]
const _FINGERPRINT_PROBE: () = ();

impl Action for EncodeMember {
    fn id(&self) -> &'static str {
        "encode-member"
    }
    fn version(&self) -> u32 {
        4 // v4: members over 2 MiB get an 8 MiB window (v3: over ONE_SHOT_MAX, streamed)
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["records"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["member", "type", "level"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/actions/mod.rs",
            "src/canon.rs",
            "src/shown.rs",
            "src/digest.rs",
            "src/adapters/",
            "src/actions/parse.rs",
            "src/select.rs",
            "src/timefmt.rs",
            "src/formats/manifest.rs",
            "src/formats/tar.rs",
            "src/formats/gzip.rs",
        ]
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
        let ty = cx.param_str("type")?;
        let ty = RecordType::parse(ty)
            .ok_or_else(|| ActionError::Failed(format!("parameter type: unknown record type {ty:?}")))?;
        let filtering = ty.selectable() && !select.is_empty();
        let failed = |e: std::io::Error| ActionError::Failed(format!("records blob: {e}"));
        let scratch = |e: std::io::Error| ActionError::io(cx.out, e);
        let mut records = cx.records("records")?;
        let mut data =
            Sha256Writer::new(std::io::BufWriter::new(tempfile::tempfile_in(cx.out).map_err(scratch)?));
        let mut count = 0u64;
        let mut line = Vec::new();
        loop {
            line.clear();
            if records.read_until(b'\n', &mut line).map_err(failed)? == 0 {
                break;
            }
            let rl = RecordLine::split(&line)
                .ok_or_else(|| ActionError::Failed("malformed records blob".into()))?;
            if filtering && !select.matches(&rl.meta().map_err(ActionError::Failed)?) {
                continue;
            }
            data.write_all(rl.record).map_err(scratch)?;
            count += 1;
        }
        drop(records);
        let entry = Entry { path: member.clone(), sha256: data.digest(), bytes: data.len, records: count };
        let mut jsonl = data.inner.into_inner().map_err(|e| scratch(e.into_error()))?;
        let path = cx.out.join("frame");
        let io = |e: std::io::Error| ActionError::io(&path, e);
        let file = std::fs::File::create(&path).map_err(io)?;
        if count > 0 {
            let header = tar::header(&member, entry.bytes, mtime).map_err(ActionError::Failed)?;
            let pad = (tar::BLOCK - entry.bytes as usize % tar::BLOCK) % tar::BLOCK;
            let total = tar::BLOCK as u64 + entry.bytes + pad as u64;
            std::io::Seek::rewind(&mut jsonl).map_err(scratch)?;
            // input and output of a one-shot frame, and the compressor
            let context =
                if tar::window_log(total) > tar::WINDOW_LOG { ZSTD_LARGE_CONTEXT } else { ZSTD_CONTEXT };
            let mut held =
                crate::actions::MEMORY.acquire(context + if total <= ONE_SHOT_MAX { 2 * total } else { 0 });
            held.trim_on_release();
            if total <= ONE_SHOT_MAX {
                let mut buf = Vec::with_capacity(total as usize);
                buf.extend_from_slice(&header);
                std::io::Read::read_to_end(&mut jsonl, &mut buf).map_err(scratch)?;
                buf.resize(total as usize, 0);
                let frame = tar::frame(&buf, level).map_err(ActionError::Failed)?;
                drop(buf);
                let mut file = file;
                file.write_all(&frame).map_err(io)?;
            } else {
                let mut z = tar::frame_writer(std::io::BufWriter::new(file), level, total).map_err(io)?;
                z.write_all(&header).map_err(io)?;
                std::io::copy(&mut jsonl, &mut z).map_err(io)?;
                z.write_all(&vec![0u8; pad]).map_err(io)?;
                z.finish().map_err(io)?.flush().map_err(io)?;
            }
        }
        cx.write("entry", &canon::to_vec_of(&entry))?;
        Ok(())
    }
}

/// Memory reserved for a zstd compressor (level 19, 2 MiB window: ~35 MiB).
const ZSTD_CONTEXT: u64 = 48 << 20;

/// The same with an 8 MiB window ([`tar::MAX_WINDOW_LOG`]): ~90 MiB.
const ZSTD_LARGE_CONTEXT: u64 = 112 << 20;

/// Largest member (tar header, data, padding) framed in one shot, in memory.
pub const ONE_SHOT_MAX: u64 = 32 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_frame_decodes_to_its_input() {
        let mut data = Vec::new();
        for i in 0..400_000u32 {
            data.extend_from_slice(
                format!("{{\"id\":\"X-{}\",\"n\":{}}}\n", i % 977, i * 7919 % 1000).as_bytes(),
            );
        }
        for level in [3, 19] {
            let mut z = tar::frame_writer(Vec::new(), level, data.len() as u64).unwrap();
            for chunk in data.chunks(8192 + 17) {
                z.write_all(chunk).unwrap();
            }
            let frame = z.finish().unwrap();
            assert!(zstd::decode_all(&frame[..]).unwrap() == data, "level {level}");
            let header = zstd::zstd_safe::get_frame_content_size(&frame).unwrap();
            assert_eq!(header, Some(data.len() as u64));
        }
    }
}
