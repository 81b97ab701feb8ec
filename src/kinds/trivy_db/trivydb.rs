//! `assemble-trivy-db` v2: `trivy.db` and `metadata.json` from every
//! shard's rows, packaged as `db.tar.gz` with its OCI layout (tag `2`).
//!
//! Inputs: `rows` (every `trivy-convert`), `rejected` (every
//! `parse-documents`) and `unconverted` (every `trivy-convert`'s
//! `rejected`), both listed in the manifest's `rejected[]`, and `warnings`
//! (every `trivy-convert`'s, optional) in its `warnings[]`. Parameters: `profile`,
//! `kind`, `select`, `sources`, `epoch`, `next-update-hours`, `tool`.
//!
//! The rows are merged in key order ([`crate::actions::merge::Merge`]) and
//! decoded on one thread and streamed, in batches through a bounded
//! channel, to the step's own thread (so the two halves overlap), which
//! merges rows sharing a slot (`model::merge`) and writes them with the
//! bbolt writer: advisory buckets get one nested bucket per
//! package, and the `vulnerability` bucket is always written (Trivy
//! panics without it). Memory does not grow with the number of advisories.
//! The file is written into a reusable scratch file of the cache
//! ([`crate::cache::scratch`]: its pages are rewritten, not allocated anew,
//! on every rebuild) and archived from there; it is never an output.
//!
//! Every key and bucket name fits bbolt (the converter rejects documents
//! whose would not), and no row value outgrows
//! [`super::model::MAX_ROW_BYTES`], merged or not: refused as
//! invalid input (exit 2) naming the source, the advisory and the row,
//! never an oversized allocation.

use std::io::BufWriter;

use serde_json::Value;

use super::model::{short, RawRow, DATA_SOURCE_BUCKET, MAX_ROW_BYTES, VULNERABILITY_BUCKET};
use crate::actions::dbexport::{self, DbFiles};
use crate::actions::merge::Merge;
use crate::actions::{Action, ActionCx, ActionError};
use crate::formats::bbolt::BoltWriter;
use crate::formats::manifest::Warning;
use crate::formats::oci;
use crate::sources::SourceError;

#[derive(Debug)]
pub struct AssembleTrivyDb;

/// Streams merged rows into a bbolt file, opening and closing buckets.
struct DbStream<W: std::io::Write + std::io::Seek> {
    w: BoltWriter<W>,
    bucket: Option<String>,
    package: Option<String>,
    wrote_vulnerability: bool,
    advisories: u64,
}

fn bolt(e: impl std::fmt::Display) -> ActionError {
    ActionError::Failed(format!("trivy.db: {e}"))
}

/// Refuses a row that is, or would be once `origin`'s row is merged in,
/// over [`MAX_ROW_BYTES`]: invalid input (exit 2) naming the source and
/// the advisory, not a failure worth retrying.
fn too_big(r: &RawRow, origin: &str) -> ActionError {
    let (source, id) = origin.split_once('/').unwrap_or(("", origin));
    ActionError::Source(SourceError::Refused {
        source_name: source.to_string(),
        path: format!("advisory {}", short(id)),
        reason: format!(
            "the trivy.db row {}/{}/{} would take over {MAX_ROW_BYTES} bytes (too many advisories \
             merged under one id)",
            short(r.bucket()),
            short(r.package()),
            short(r.key())
        ),
    })
}

impl<W: std::io::Write + std::io::Seek> DbStream<W> {
    fn close_package(&mut self) -> Result<(), ActionError> {
        if self.package.take().is_some() {
            self.w.end_bucket().map_err(bolt)?;
        }
        Ok(())
    }
    fn close_bucket(&mut self) -> Result<(), ActionError> {
        self.close_package()?;
        if self.bucket.take().is_some() {
            self.w.end_bucket().map_err(bolt)?;
        }
        Ok(())
    }
    fn empty_vulnerability_before(&mut self, next: Option<&str>) -> Result<(), ActionError> {
        if !self.wrote_vulnerability && next.is_none_or(|n| n > VULNERABILITY_BUCKET) {
            self.w.begin_bucket(VULNERABILITY_BUCKET.as_bytes()).map_err(bolt)?;
            self.w.end_bucket().map_err(bolt)?;
            self.wrote_vulnerability = true;
        }
        Ok(())
    }
    fn emit(&mut self, r: &RawRow) -> Result<(), ActionError> {
        if self.bucket.as_deref().map(str::as_bytes) != Some(r.bucket_bytes()) {
            self.close_bucket()?;
            self.empty_vulnerability_before(Some(r.bucket()))?;
            self.w.begin_bucket(r.bucket_bytes()).map_err(bolt)?;
            self.wrote_vulnerability |= r.bucket() == VULNERABILITY_BUCKET;
            self.bucket = Some(r.bucket().to_string());
        }
        if !r.package_bytes().is_empty()
            && self.package.as_deref().map(str::as_bytes) != Some(r.package_bytes())
        {
            self.close_package()?;
            self.w.begin_bucket(r.package_bytes()).map_err(bolt)?;
            self.package = Some(r.package().to_string());
        }
        if r.bucket_bytes() != VULNERABILITY_BUCKET.as_bytes()
            && r.bucket_bytes() != DATA_SOURCE_BUCKET.as_bytes()
        {
            self.advisories += 1;
        }
        if r.value().len() > MAX_ROW_BYTES {
            // rows merged within one shard: the same limit as across shards
            return Err(too_big(r, r.origin()));
        }
        // the value is the canonical JSON the shard step wrote
        self.w.put(r.key_bytes(), r.value()).map_err(bolt)
    }
}

/// The source of a row's origin (`<source>/<document id>`).
fn source_of(origin: &str) -> &str {
    origin.split_once('/').map_or(origin, |(s, _)| s)
}

/// Rows per batch sent from the merging thread to the writing one, and
/// batches in flight: a few MiB of rows at most.
const ROW_BATCH: usize = 1024;
const ROW_BATCHES: usize = 8;

/// Every shard's rows in key order (rows of one slot adjacent), decoded,
/// sent in batches; returns early if the receiver is gone.
fn merged_rows(
    cx: &ActionCx<'_>,
    blobs: &[crate::digest::Digest],
    tx: &std::sync::mpsc::SyncSender<Result<Vec<RawRow>, ActionError>>,
) -> Result<(), ActionError> {
    let mut merge = Merge::open(cx.cache, blobs, 3)?;
    let mut batch = Vec::with_capacity(ROW_BATCH);
    while let Some(line) = merge.next_line()? {
        batch.push(RawRow::decode(line).map_err(ActionError::Failed)?);
        if batch.len() == ROW_BATCH && tx.send(Ok(std::mem::take(&mut batch))).is_err() {
            return Ok(());
        }
    }
    let _ = tx.send(Ok(batch));
    Ok(())
}

impl Action for AssembleTrivyDb {
    fn id(&self) -> &'static str {
        "assemble-trivy-db"
    }
    fn version(&self) -> u32 {
        2 // v2: merged advisory rows re-pruned; vulnerability rows merged only here
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["rows", "rejected", "unconverted"]
    }
    fn optional_inputs(&self) -> &'static [&'static str] {
        &["warnings"] // gathered into the manifest's warnings[]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["profile", "kind", "epoch", "next-update-hours", "tool"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/actions/mod.rs",
            "src/canon.rs",
            "src/digest.rs",
            "src/adapters/",
            "src/select.rs",
            "src/shown.rs",
            "src/actions/dbexport.rs",
            "src/actions/merge.rs",
            "src/actions/parse.rs",
            "src/sources/",
            "src/timefmt.rs",
            "src/formats/manifest.rs",
            "src/kinds/trivy_db/model/",
            "src/versions.rs",
            "src/versions/",
            "src/profile.rs",
            "src/formats/bbolt.rs",
            "src/formats/oci.rs",
            "src/formats/tar.rs",
            "src/formats/gzip.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        dbexport::OUTPUTS
    }
    fn publishes(&self) -> bool {
        true
    }
    fn published_name(&self, output: &str, _params: &Value) -> Option<String> {
        dbexport::published_name(output, "db.tar.gz")
    }
    fn names_output(&self) -> Option<&'static str> {
        Some("names")
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let epoch = cx.param_i64("epoch")?;
        let hours = cx.param_i64("next-update-hours")?;
        // rewritten in place run after run: see crate::cache::scratch
        let scratch = cx.cache.reusable_scratch("trivy-db")?;
        let db_path = scratch.path().to_path_buf();
        let file = scratch.file();
        let mut s = DbStream {
            w: BoltWriter::new(BufWriter::with_capacity(1 << 20, file)).map_err(bolt)?,
            bucket: None,
            package: None,
            wrote_vulnerability: false,
            advisories: 0,
        };
        let started = std::time::Instant::now();
        let blobs = cx.blobs("rows");
        // Two stages on two threads: merging (decompress, order, decode)
        // feeds writing (slot merges, pages, the file) through a bounded
        // channel of batches, in order. An error on either side ends both: a failed
        // writer drops the receiver, and the merger stops at its next send.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<RawRow>, ActionError>>(ROW_BATCHES);
        // buckets two sources with different data sources write: the first wins
        let mut shared: std::collections::BTreeMap<String, (String, String)> = Default::default();
        std::thread::scope(|scope| -> Result<(), ActionError> {
            scope.spawn(move || {
                if let Err(e) = merged_rows(cx, &blobs, &tx) {
                    let _ = tx.send(Err(e));
                }
            });
            // rows of one slot (from several shards) are merged here, on the
            // writing side, which has time to spare while the heap is the
            // merging side's work
            let mut pending: Option<RawRow> = None;
            for batch in rx {
                for row in batch? {
                    match pending.as_mut() {
                        Some(p) if p.same_slot(&row) => {
                            if p.value().len().saturating_add(row.value().len()) > MAX_ROW_BYTES {
                                return Err(too_big(p, row.origin()));
                            }
                            if p.bucket_bytes() == DATA_SOURCE_BUCKET.as_bytes() && p.value() != row.value() {
                                shared.entry(p.key().to_string()).or_insert_with(|| {
                                    (source_of(p.origin()).to_string(), source_of(row.origin()).to_string())
                                });
                            }
                            p.merge(&row).map_err(ActionError::Failed)?
                        }
                        _ => {
                            if let Some(p) = pending.replace(row) {
                                s.emit(&p)?;
                            }
                        }
                    }
                }
            }
            if let Some(p) = pending {
                s.emit(&p)?;
            }
            Ok(())
        })?;
        s.close_bucket()?;
        s.empty_vulnerability_before(None)?;
        let advisories = s.advisories;
        let mut inner = s.w.finish().map_err(bolt)?;
        // the end of this file; an earlier, longer one's tail is cut
        let len = std::io::Seek::stream_position(&mut inner).map_err(|e| ActionError::io(&db_path, e))?;
        drop(inner);
        scratch.set_len(len)?;
        tracing::debug!("trivy.db: {advisories} advisory rows merged and written in {:?}", started.elapsed());
        let meta_path = cx.out.join("metadata.json");
        std::fs::write(&meta_path, dbexport::metadata(2, epoch, hours))
            .map_err(|e| ActionError::io(&meta_path, e))?;
        dbexport::package(
            cx,
            DbFiles {
                archive: "db.tar.gz",
                layer_media_type: oci::TRIVY_DB_LAYER,
                tag: "2",
                members: vec![("trivy.db", db_path, advisories), ("metadata.json", meta_path, 1)],
                warnings: shared
                    .into_iter()
                    .map(|(bucket, (first, other))| Warning {
                        source: other.clone(),
                        path: format!("trivy.db data-source/{bucket}"),
                        message: format!(
                            "sources {first} and {other} both write bucket {}; Trivy shows its findings as from \
                             {first}'s data source and rates them by that id (give one source the bucket, or \
                             name the preferred source so it sorts first)",
                            crate::shown::name(&bucket)
                        ),
                    })
                    .inspect(|w| tracing::warn!("{}", w.message))
                    .collect(),
            },
        )
    }
}
