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
        4 // v4: numbers keep their text; duplicate keys rejected
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["docs"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["format", "source", "path", "origin"]
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
        let mut lines: Vec<(String, String, Vec<u8>)> = Vec::with_capacity(shard.docs.len());
        let mut rejected = Vec::new();
        for doc in &shard.docs {
            let bytes = reader.read(source, doc)?;
            let shown = super::shown_path(declared, origin, &doc.path);
            match adapters::parse(format, &bytes, &format!("sha256:{}", doc.sha256)) {
                Ok(parsed) => {
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
                    line.push(b'\n');
                    lines.push((parsed.meta.id, doc.path.clone(), line));
                }
                Err(reason) => rejected.push(Rejected { source: source.to_string(), path: shown, reason }),
            }
        }
        lines.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let mut out = Vec::with_capacity(lines.iter().map(|l| l.2.len()).sum());
        for (_, _, l) in lines {
            out.extend_from_slice(&l);
        }
        // zstd level 1 (fast): the cache holds every shard's records, so keep them small
        let packed = zstd::bulk::compress(&out, 1).map_err(|e| ActionError::Failed(e.to_string()))?;
        cx.write("records", &packed)?;
        rejected.sort();
        cx.write("rejected", &canon::to_vec(&serde_json::to_value(&rejected).expect("serialisable")))?;
        Ok(())
    }
}

/// Read a `rejected` blob.
pub fn read_rejected(bytes: &[u8]) -> Result<Vec<Rejected>, String> {
    serde_json::from_slice::<Value>(bytes)
        .and_then(serde_json::from_value)
        .map_err(|e| format!("rejected list: {e}"))
}
