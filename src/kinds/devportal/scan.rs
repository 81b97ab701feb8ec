//! `scan-portal` v1: one shard of a `tree` source, checked and copied.
//!
//! Input `docs` (the shard). Parameters: `source`, `path`, `origin` (how
//! refused files are named, as `parse-documents` names them) and `allow`
//! (the profile's `allow-external`, an array of strings).
//!
//! Each file is given its category and content type ([`super::tree`]);
//! a file outside the categories, or an HTML/CSS/JS file with an external
//! reference the allow-list does not admit, is refused: listed in
//! `rejected` (`line N: external reference URL …`), which fails the build
//! with exit 2 naming the file and line (`--allow-invalid` leaves the file
//! out of the kit instead). Every other file's bytes are appended to
//! `data` as they are read, scanned on the way: a file of any size is
//! streamed in 64 KiB pieces (`ShardReader::stream`, digest checked at the
//! end), never held.
//!
//! Outputs: `entries` (canonical JSON array of [`PortalEntry`], in path
//! order, each with its byte range in `data`), `data` (the accepted
//! files' bytes, concatenated in path order) and `rejected`.

use std::io::{Seek, Write};

use super::tree::{self, AllowList, RefScanner};
use crate::actions::{Action, ActionCx, ActionError};
use crate::canon;
use crate::digest::Sha256;
use crate::formats::manifest::Rejected;

#[derive(Debug)]
pub struct ScanPortal;

/// One accepted file of the tree, as `scan-portal` hands it on.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalEntry {
    pub category: String,
    /// `sdks/<name>/…`: the SDK's name.
    pub sdk: Option<String>,
    pub path: String,
    pub sha256: Sha256,
    pub size_bytes: u64,
    pub content_type: String,
    /// Where the file's bytes start in its shard's `data` blob.
    pub offset: u64,
}

/// Passes bytes to a file and, for scanned files, to the reference scanner.
struct Tee<'s, 'a, W> {
    out: W,
    scanner: Option<&'s mut RefScanner<'a>>,
}

impl<W: Write> Write for Tee<'_, '_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        if let Some(s) = self.scanner.as_mut() {
            s.feed(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The allow-list of the `allow` parameter (entries re-checked).
pub fn allow_list(v: Option<&serde_json::Value>) -> Result<AllowList, String> {
    let entries: Vec<String> = match v {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("parameter allow: {e}"))?,
    };
    for e in &entries {
        AllowList::check_entry(e)?;
    }
    Ok(AllowList::new(&entries))
}

impl Action for ScanPortal {
    fn id(&self) -> &'static str {
        "scan-portal"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["docs"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["source", "path", "origin", "allow"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/kinds/devportal/tree.rs",
            "src/actions/mod.rs",
            "src/canon.rs",
            "src/digest.rs",
            "src/shown.rs",
            "src/sources/",
            "src/adapters/",
            "src/select.rs",
            "src/actions/parse.rs",
            "src/timefmt.rs",
            "src/formats/manifest.rs",
            "src/formats/tar.rs",
            "src/formats/gzip.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["entries", "data", "rejected"]
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let source = cx.param_str("source")?;
        let declared = cx.param_str("path")?;
        let origin = cx.param_str("origin")?;
        let allow = allow_list(cx.params.get("allow")).map_err(ActionError::Failed)?;
        let (shard, reader) = cx.shard("docs")?;
        let path = cx.out.join("data");
        let io = |e: std::io::Error| ActionError::io(&path, e);
        let mut data = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&path).map_err(io)?);
        let mut at = 0u64;
        let mut entries = Vec::new();
        let mut rejected = Vec::new();
        for doc in &shard.docs {
            let shown = crate::actions::shown_path(declared, origin, &doc.path);
            let named = tree::check_path(&doc.path)
                .and_then(|()| crate::formats::tar::header(&doc.path, 0, 0).map(drop))
                .and_then(|()| tree::category(&doc.path));
            let (category, sdk) = match named {
                Ok(c) => c,
                Err(reason) => {
                    rejected.push(Rejected { source: source.to_string(), path: shown, reason });
                    continue;
                }
            };
            let mut scanner = tree::scanned(&doc.path).then(|| RefScanner::new(&allow));
            reader.stream(source, doc, &mut Tee { out: &mut data, scanner: scanner.as_mut() })?;
            let (findings, more) = scanner.map(RefScanner::finish).unwrap_or_default();
            if findings.is_empty() {
                entries.push(PortalEntry {
                    category: category.to_string(),
                    sdk: sdk.map(str::to_string),
                    path: doc.path.clone(),
                    sha256: doc.sha256,
                    size_bytes: doc.size,
                    content_type: tree::content_type(&doc.path).to_string(),
                    offset: at,
                });
                at += doc.size;
                continue;
            }
            // refused: its bytes leave `data` again
            let mut file = data.into_inner().map_err(|e| io(e.into_error()))?;
            file.set_len(at).map_err(io)?;
            file.seek(std::io::SeekFrom::Start(at)).map_err(io)?;
            data = std::io::BufWriter::with_capacity(1 << 16, file);
            for f in &findings {
                rejected.push(Rejected {
                    source: source.to_string(),
                    path: shown.clone(),
                    reason: tree::reason(f),
                });
            }
            if more > 0 {
                rejected.push(Rejected {
                    source: source.to_string(),
                    path: shown,
                    reason: format!("{more} more external reference(s) after these"),
                });
            }
        }
        data.into_inner().map_err(|e| io(e.into_error()))?;
        cx.write("entries", &canon::to_vec(&serde_json::to_value(&entries).expect("serialisable")))?;
        rejected.sort();
        cx.write("rejected", &canon::to_vec(&serde_json::to_value(&rejected).expect("serialisable")))?;
        Ok(())
    }
}
