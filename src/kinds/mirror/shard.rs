//! `mirror-shard` v1: one source shard's files of a mirror tree.
//!
//! Input `records` (from `parse-documents`). Parameters: `type`
//! (`{shard.type}`), `source`, `shard` (the zero-padded index), `select`
//! (applied to advisories, as json:raw does), `level` (zstd), `encryption`
//! (`{mode: "age", recipients}` or null: data files are then age files,
//! `.age`, and their entries name the plaintext digests too).
//! Outputs (see [`super::tree`] for the paths):
//! - `raw`: the selected records, one canonical JSON line each, in
//!   (id, document) order, as one zstd frame ([`encode_jsonl`]);
//! - `normalized`: for advisories, the normalised rows
//!   ([`super::normalize`]) as one zstd frame; empty for other types;
//! - `index`: the shard's [`IndexShard`] as canonical JSON;
//! - `raw-member`, `normalized-member`, `index-member`: each of those as a
//!   tar member (header, bytes, padding) in one zstd frame (level 1: the
//!   data is compressed already), for the mirror's `.tar.zst`;
//! - `entry`: the [`ShardEntry`].
//!
//! With no selected record every output but `entry` is empty and nothing
//! is published for the shard. Memory: the records blob is read as a
//! stream; lines go to a temp file; the index (ids and digests) stays in
//! memory, charged to the budget with the file's size as bound.

use std::io::{BufRead, Seek, Write};

use serde_json::Value;

use super::tree::{self, IndexEntry, IndexShard, Plain, ShardEntry, TreeFile, AGE_SUFFIX};
use crate::actions::{Action, ActionCx, ActionError, RecordLine, Sha256Writer};
use crate::canon;
use crate::digest::Sha256;
use crate::formats::tar;
use crate::select::Selectors;

#[derive(Debug)]
pub struct MirrorShard;

/// zstd level of the tar member frames (their data is compressed already).
pub const MEMBER_LEVEL: i32 = 1;

/// The mtime of every tar member: fixed, not the pinned time, so that a
/// nightly whose `SOURCE_DATE_EPOCH` moves re-encodes no shard.
pub const MEMBER_MTIME: i64 = 0;

/// One zstd frame of the file `src` (read from its start), written to
/// `dst`; the window follows the size alone, so the bytes depend on the
/// content and level only (what `mirror apply` relies on).
pub fn encode_file(
    src: &mut std::fs::File,
    len: u64,
    dst: &std::path::Path,
    level: i32,
) -> std::io::Result<()> {
    src.rewind()?;
    let out = std::io::BufWriter::new(std::fs::File::create(dst)?);
    let mut z = zstd::stream::write::Encoder::new(out, level)?;
    z.include_checksum(true)?;
    z.include_contentsize(true)?;
    z.set_pledged_src_size(Some(len))?;
    z.set_parameter(zstd::stream::raw::CParameter::WindowLog(tar::window_log(len)))?;
    std::io::copy(src, &mut z)?;
    z.finish()?.flush()
}

/// A tar member of the file `src` named `path` (mtime [`MEMBER_MTIME`]),
/// as one zstd frame at [`MEMBER_LEVEL`].
pub fn member_frame(path: &str, src: &std::path::Path, dst: &std::path::Path) -> std::io::Result<()> {
    let mut f = std::fs::File::open(src)?;
    let len = f.metadata()?.len();
    let header = tar::header(path, len, MEMBER_MTIME).map_err(std::io::Error::other)?;
    let pad = (tar::BLOCK as u64 - len % tar::BLOCK as u64) % tar::BLOCK as u64;
    let total = tar::BLOCK as u64 + len + pad;
    let out = std::io::BufWriter::new(std::fs::File::create(dst)?);
    let mut z = zstd::stream::write::Encoder::new(out, MEMBER_LEVEL)?;
    z.include_checksum(true)?;
    z.include_contentsize(true)?;
    z.set_pledged_src_size(Some(total))?;
    z.set_parameter(zstd::stream::raw::CParameter::WindowLog(tar::window_log(total)))?;
    z.write_all(&header)?;
    std::io::copy(&mut f, &mut z)?;
    z.write_all(&vec![0u8; pad as usize])?;
    z.finish()?.flush()
}

/// Write `lines` (each without its newline) as a JSONL zstd frame at
/// `dst`; returns its SHA-256 and length.
pub fn encode_jsonl<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
    scratch: &std::path::Path,
    dst: &std::path::Path,
    level: i32,
) -> std::io::Result<(Sha256, u64)> {
    let mut tmp = Sha256Writer::new(std::io::BufWriter::new(tempfile::tempfile_in(scratch)?));
    for l in lines {
        tmp.write_all(l)?;
        tmp.write_all(b"\n")?;
    }
    let len = tmp.len;
    let mut f = tmp.inner.into_inner().map_err(|e| e.into_error())?;
    encode_file(&mut f, len, dst, level)?;
    file_digest(dst)
}

/// Encrypt the file `p` in place for `recipients` (age, X25519), unless
/// there are none; returns the plaintext's digest. age encryption is
/// randomised: the step's key (its input records and the recipients)
/// makes a warm cache keep the ciphertext; a cold cache makes a new one.
pub fn encrypt(
    p: &std::path::Path,
    recipients: &[String],
    scratch: &std::path::Path,
) -> Result<Option<Plain>, ActionError> {
    if recipients.is_empty() {
        return Ok(None);
    }
    let (sha256, length) = file_digest(p).map_err(|e| ActionError::io(p, e))?;
    let keys: Vec<age::x25519::Recipient> = recipients
        .iter()
        .map(|r| r.parse().map_err(|e: &str| ActionError::Failed(format!("recipient {r}: {e}"))))
        .collect::<Result<_, _>>()?;
    let enc = age::Encryptor::with_recipients(keys.iter().map(|k| k as &dyn age::Recipient))
        .map_err(|e| ActionError::Failed(format!("age: {e}")))?;
    let tmp = tempfile::NamedTempFile::new_in(scratch).map_err(|e| ActionError::io(scratch, e))?;
    let io = |e: std::io::Error| ActionError::io(p, e);
    let mut w = enc.wrap_output(std::io::BufWriter::new(tmp.reopen().map_err(io)?)).map_err(io)?;
    std::io::copy(&mut std::fs::File::open(p).map_err(io)?, &mut w).map_err(io)?;
    w.finish().map_err(io)?.flush().map_err(io)?;
    tmp.persist(p).map_err(|e| io(e.error))?;
    Ok(Some(Plain { sha256, length }))
}

/// SHA-256 and length of a file.
pub fn file_digest(p: &std::path::Path) -> std::io::Result<(Sha256, u64)> {
    let mut w = Sha256Writer::new(std::io::sink());
    copy_wide(&mut std::fs::File::open(p)?, &mut w)?;
    Ok((w.digest(), w.len))
}

/// `std::io::copy` with a 256 KiB buffer (its own is 8 KiB: a 100 MiB
/// file would take 12,800 reads and writes).
pub fn copy_wide(r: &mut impl std::io::Read, w: &mut impl std::io::Write) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(got) => {
                w.write_all(&buf[..got])?;
                n += got as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Action for MirrorShard {
    fn id(&self) -> &'static str {
        "mirror-shard"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["records"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["type", "source", "shard", "level"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/kinds/mirror/tree.rs",
            "src/kinds/mirror/normalize.rs",
            "src/actions/mod.rs",
            "src/actions/parse.rs",
            "src/adapters/",
            "src/canon.rs",
            "src/shown.rs",
            "src/digest.rs",
            "src/select.rs",
            "src/timefmt.rs",
            "src/formats/manifest.rs",
            "src/formats/tar.rs",
            "src/formats/gzip.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["raw", "normalized", "index", "raw-member", "normalized-member", "index-member", "entry"]
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let ty = cx.param_str("type")?.to_string();
        let source = cx.param_str("source")?.to_string();
        let shard = cx.param_str("shard")?.to_string();
        let level = cx.param_i64("level")? as i32;
        let select = Selectors::from_json(cx.params.get("select").unwrap_or(&Value::Null))
            .map_err(ActionError::Failed)?;
        let filtering = ty == "advisories" && !select.is_empty();
        let failed = |e: std::io::Error| ActionError::Failed(format!("records blob: {e}"));
        let scratch = |e: std::io::Error| ActionError::io(cx.out, e);
        let mut reader = cx.records("records")?;
        let recipients: Vec<String> = cx
            .params
            .get("encryption")
            .and_then(|e| e.get("recipients"))
            .and_then(|r| serde_json::from_value(r.clone()).ok())
            .unwrap_or_default();
        let suffix = if recipients.is_empty() { "" } else { AGE_SUFFIX };
        let raw_target = format!("{}{suffix}", tree::raw_path(&ty, &source, &shard));
        let mut lines =
            Sha256Writer::new(std::io::BufWriter::new(tempfile::tempfile_in(cx.out).map_err(scratch)?));
        let mut norm = std::io::BufWriter::new(tempfile::tempfile_in(cx.out).map_err(scratch)?);
        let (mut norm_len, mut rows) = (0u64, 0u64);
        let mut index = IndexShard::new();
        let mut held = crate::actions::MEMORY.acquire(1 << 20);
        let mut line = Vec::new();
        let mut count = 0u64;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(failed)? == 0 {
                break;
            }
            let rl = RecordLine::split(&line)
                .ok_or_else(|| ActionError::Failed("malformed records blob".into()))?;
            let meta = rl.meta().map_err(ActionError::Failed)?;
            if filtering && !select.matches(&meta) {
                continue;
            }
            let record = rl.record.strip_suffix(b"\n").unwrap_or(rl.record);
            lines.write_all(record).map_err(scratch)?;
            lines.write_all(b"\n").map_err(scratch)?;
            count += 1;
            let v: Value =
                serde_json::from_slice(record).map_err(|e| ActionError::Failed(format!("record: {e}")))?;
            let document = v.get("path").and_then(Value::as_str).unwrap_or_default().to_string();
            index.entry(meta.id.clone()).or_default().push(IndexEntry {
                document,
                sha256: Sha256::of(record),
                modified: meta.modified.clone(),
                target: raw_target.clone(),
            });
            if ty == "advisories" {
                for r in super::normalize::rows(&v) {
                    let b = canon::to_vec(&r);
                    norm.write_all(&b).map_err(scratch)?;
                    norm.write_all(b"\n").map_err(scratch)?;
                    norm_len += b.len() as u64 + 1;
                    rows += 1;
                }
            }
            let want = (lines.len / 4).max(1 << 20);
            if !crate::actions::MEMORY.try_grow(&mut held, want) {
                held = {
                    drop(held);
                    crate::actions::MEMORY.acquire(want)
                };
            }
        }
        drop(reader);
        let mut entry = ShardEntry {
            ty: ty.clone(),
            source: source.clone(),
            shard: shard.clone(),
            records: count,
            raw: None,
            normalized: None,
            index: None,
            rows,
        };
        for o in ["raw", "normalized", "index", "raw-member", "normalized-member", "index-member"] {
            cx.write(o, b"")?;
        }
        if count > 0 {
            let raw_len = lines.len;
            let mut f = lines.inner.into_inner().map_err(|e| scratch(e.into_error()))?;
            let p = cx.out.join("raw");
            encode_file(&mut f, raw_len, &p, level).map_err(|e| ActionError::io(&p, e))?;
            let plaintext = encrypt(&p, &recipients, cx.out)?;
            let (sha256, length) = file_digest(&p).map_err(|e| ActionError::io(&p, e))?;
            member_frame(&raw_target, &p, &cx.out.join("raw-member")).map_err(scratch)?;
            entry.raw = Some(TreeFile { path: raw_target, sha256, length, plaintext });
            if rows > 0 {
                let mut f = norm.into_inner().map_err(|e| scratch(e.into_error()))?;
                let path = format!("{}{suffix}", tree::normalized_path(&source, &shard));
                let p = cx.out.join("normalized");
                encode_file(&mut f, norm_len, &p, level).map_err(|e| ActionError::io(&p, e))?;
                let plaintext = encrypt(&p, &recipients, cx.out)?;
                let (sha256, length) = file_digest(&p).map_err(|e| ActionError::io(&p, e))?;
                member_frame(&path, &p, &cx.out.join("normalized-member")).map_err(scratch)?;
                entry.normalized = Some(TreeFile { path, sha256, length, plaintext });
            }
            let bytes = canon::to_vec_of(&index);
            let path = tree::index_path(&ty, &source, &shard);
            cx.write("index", &bytes)?;
            member_frame(&path, &cx.out.join("index"), &cx.out.join("index-member")).map_err(scratch)?;
            entry.index = Some(TreeFile {
                path,
                sha256: Sha256::of(&bytes),
                length: bytes.len() as u64,
                plaintext: None,
            });
        }
        cx.write("entry", &canon::to_vec_of(&entry))
    }
}
