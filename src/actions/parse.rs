//! `parse-documents` v4: validate one shard's documents and emit canonical
//! records.
//!
//! Output `records` (zstd level 1): one line per valid document,
//! `<meta>\t<record>\n`, both canonical JSON, sorted by (id, path). `meta`
//! is what selectors look at ([`RecordMeta`]); `record` is the envelope
//! `{document, format, id, path, sha256, source}` carried into the bundle:
//! the document unchanged in meaning, re-serialised canonically, with the
//! SHA-256 of the upstream bytes. Output `rejected`: canonical JSON array
//! of `{source, path, reason}`, naming the archive member where there is
//! one. The action never fails on a bad document; the driver decides
//! (exit 2, or `--allow-invalid`).
//!
//! Memory: one document at a time per step, under the process-wide
//! [`super::MEMORY`] budget: a step reserves a document's size before
//! reading it and its [`adapters::estimate_memory`] before parsing it,
//! waiting when other steps hold the budget, so `--jobs N` cannot multiply
//! it. A document estimated over [`PARSE_MAX`] is rejected without being
//! parsed. Canonical lines go to an unnamed temp file; only the sort index
//! `(id, path, offset, length)` stays in memory, and `records` is
//! compressed as a stream.

use std::io::{Read, Seek, SeekFrom, Write};

use serde_json::{json, Value};

use super::{Action, ActionCx, ActionError};
use crate::adapters::{self, Format};
use crate::canon;
use crate::formats::manifest::Rejected;
use crate::select::RecordMeta;

#[derive(Debug)]
pub struct ParseDocuments;

/// One line of a `records` blob, split.
pub struct RecordLine<'a> {
    pub meta: &'a [u8],
    pub record: &'a [u8],
}

impl<'a> RecordLine<'a> {
    pub fn split(line: &'a [u8]) -> Option<Self> {
        let tab = line.iter().position(|&b| b == b'\t')?;
        Some(RecordLine { meta: &line[..tab], record: &line[tab + 1..] })
    }
    pub fn meta(&self) -> Result<RecordMeta, String> {
        serde_json::from_slice(self.meta).map_err(|e| e.to_string())
    }
}

impl Action for ParseDocuments {
    fn id(&self) -> &'static str {
        "parse-documents"
    }
    fn version(&self) -> u32 {
        5 // v5: records streamed (content size in the frame); over-budget documents rejected
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["docs"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["format", "source", "path", "origin"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/actions/mod.rs",
            "src/canon.rs",
            "src/digest.rs",
            "src/adapters/",
            "src/select.rs",
            "src/timefmt.rs",
            "src/formats/manifest.rs",
            "src/sources/",
            "src/shown.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["records", "rejected"]
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let format_name = cx.param_str("format")?;
        let format = Format::parse(format_name)
            .ok_or_else(|| ActionError::Failed(format!("unknown format {format_name:?}")))?;
        let source = cx.param_str("source")?;
        // how rejected documents are named: from parameters, so it is in the key
        let declared = cx.param_str("path")?;
        let origin = cx.param_str("origin")?;
        let (shard, reader) = cx.shard("docs")?;
        let scratch = |e: std::io::Error| ActionError::io(cx.out, e);
        let mut lines = std::io::BufWriter::new(tempfile::tempfile_in(cx.out).map_err(scratch)?);
        let mut index: Vec<(String, String, u64, u64)> = Vec::with_capacity(shard.docs.len());
        let mut at = 0u64;
        let mut rejected = Vec::new();
        for doc in &shard.docs {
            let shown = super::shown_path(declared, origin, &doc.path);
            let mut held = super::MEMORY.acquire(doc.size);
            let mut bytes = reader.read(source, doc)?;
            let need = adapters::estimate_memory(&bytes);
            if need > PARSE_MAX {
                let reason = format!(
                    "document too large to parse: about {} MiB in memory as JSON, over the {} MiB budget",
                    need >> 20,
                    PARSE_MAX >> 20
                );
                rejected.push(Rejected { source: source.to_string(), path: shown, reason });
                continue;
            }
            if !super::MEMORY.try_grow(&mut held, need) {
                // wait holding nothing (no deadlock), then read again
                drop(bytes);
                drop(held);
                held = super::MEMORY.acquire(need);
                bytes = reader.read(source, doc)?;
            }
            match adapters::parse(format, &bytes, &format!("sha256:{}", doc.sha256)) {
                Ok(parsed) => {
                    drop(bytes);
                    let record = json!({
                        "document": parsed.document,
                        "format": format.as_str(),
                        "id": parsed.meta.id,
                        "path": doc.path,
                        "sha256": doc.sha256.hex(),
                        "source": source,
                    });
                    let mut line = canon::to_vec(&serde_json::to_value(&parsed.meta).expect("meta"));
                    line.push(b'\t');
                    canon::write(&record, &mut line);
                    drop(record);
                    line.push(b'\n');
                    lines.write_all(&line).map_err(scratch)?;
                    index.push((parsed.meta.id, doc.path.clone(), at, line.len() as u64));
                    at += line.len() as u64;
                }
                Err(reason) => rejected.push(Rejected { source: source.to_string(), path: shown, reason }),
            }
            held.trim_on_release();
            drop(held);
        }
        index.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let mut lines = lines.into_inner().map_err(|e| scratch(e.into_error()))?;
        // zstd level 1 (fast): the cache holds every shard's records, so keep them small
        let path = cx.out.join("records");
        let io = |e: std::io::Error| ActionError::io(&path, e);
        let file = std::fs::File::create(&path).map_err(io)?;
        let mut z = zstd::stream::Encoder::new(std::io::BufWriter::new(file), 1).map_err(io)?;
        z.set_pledged_src_size(Some(at)).map_err(io)?;
        z.include_contentsize(true).map_err(io)?;
        let mut buf = Vec::new();
        for (_, _, off, len) in &index {
            lines.seek(SeekFrom::Start(*off)).map_err(scratch)?;
            buf.clear();
            (&mut lines).take(*len).read_to_end(&mut buf).map_err(scratch)?;
            z.write_all(&buf).map_err(io)?;
        }
        z.finish().map_err(io)?.flush().map_err(io)?;
        rejected.sort();
        cx.write("rejected", &canon::to_vec(&serde_json::to_value(&rejected).expect("serialisable")))?;
        Ok(())
    }
}

/// The largest estimated parse accepted: a document over it is rejected.
pub const PARSE_MAX: u64 = 256 << 20;

/// Read a `rejected` blob.
pub fn read_rejected(bytes: &[u8]) -> Result<Vec<Rejected>, String> {
    serde_json::from_slice::<Value>(bytes)
        .and_then(serde_json::from_value)
        .map_err(|e| format!("rejected list: {e}"))
}
