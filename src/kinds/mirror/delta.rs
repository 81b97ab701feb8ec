//! Kind `mirror:delta`: what changed between two generations of a
//! `mirror:full` export, small enough to carry into an air gap, and the
//! `mirror-delta` action that writes it.
//!
//! A derived kind (the registry's `Derived`): `base = "<profile>"` takes
//! the delta from the generation before that profile's live one (kept
//! under `out/.generations/`) to the live one; `base = "<path>"` takes it
//! from the export folder at that path (what a site last imported) to the
//! live export of the profile it names. The sibling `base` module reads both
//! exports' `export.json`, puts into the cache only what differs (old and
//! new versions of changed data files and index shards) and the new
//! generation's metadata, and names them by digest in `{export.derived}`:
//! the step key covers every byte the delta is made of.
//!
//! `out/<delta>/` (see docs/FORMATS.md "Mirror deltas"):
//! - `delta/manifest.diff.json` ([`Diff`]): base identity and generation,
//!   the new generation, record ids `added[]`, `updated[]`, `removed[]`,
//!   a `tombstones[]` entry per removed record, the records files and the
//!   carried files, and the tool version that made it;
//! - `delta/records/<type>/<source>/<shard>.jsonl.zst`: the added and
//!   updated records of that shard only (whole lines, in data-file order);
//! - `delta/full.tar.zst` ([`super::pack`]): files of the new full export
//!   a site cannot make without the signing key or without the whole
//!   corpus: `export.json`, changed index files, `manifest.json`,
//!   provenance, envelopes, `checksums.txt` and `tuf/metadata/*` (and
//!   changed encrypted data files, whole);
//! - the delta's own `manifest.json` and seal.
//!
//! `mirror apply` (the operations layer's `mirror` module) rebuilds the new full export
//! from the base and these files, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::tree::IndexShard;
use crate::actions::{Action, ActionCx, ActionError};
use crate::canon;
use crate::digest::{Digest, Sha256};
use crate::formats::manifest::{self, FileRef, Manifest};

/// Files of a full export carried whole in a delta, besides changed index files.
pub const SEALED: &[&str] = &[
    "export.json",
    "manifest.json",
    "provenance.json",
    "manifest.dsse.json",
    "provenance.dsse.json",
    "checksums.txt",
];

/// A removed record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tombstone {
    pub id: String,
    pub document: String,
    /// SHA-256 of the removed record's line.
    pub sha256: Sha256,
    /// The data file it was in.
    pub target: String,
}

/// `delta/manifest.diff.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    /// The base export's root digest (SHA-256 of its `checksums.txt`).
    pub base_export_id: Sha256,
    /// SHA-256 of the base's `manifest.json`.
    pub base_manifest_digest: Sha256,
    pub base_generation: u64,
    pub generation: u64,
    /// The `mirror:full` profile both generations are of.
    pub profile: String,
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    pub tombstones: Vec<Tombstone>,
    /// `delta/records/…` files: the data file each rebuilds, and its records.
    pub records: Vec<RecordsFile>,
    /// Paths of the new full export carried in `delta/full.tar.zst`.
    pub carried: Vec<String>,
    /// Carried envelopes packed without their payload, which `apply` makes
    /// again from the file it signs ([`super::pack::attach`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detached: Vec<String>,
    pub tool: Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RecordsFile {
    /// The data file (`data/raw/…`) these records go into.
    pub target: String,
    /// Where they are in the delta.
    pub path: String,
    pub sha256: Sha256,
    pub count: u64,
}

/// The record lines of a zstd JSONL data file.
pub fn read_lines(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let r = zstd::stream::read::Decoder::new(bytes).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for l in std::io::BufReader::new(r).split(b'\n') {
        out.push(l.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// The `(id, document)` of a record line.
pub fn record_key(line: &[u8]) -> Result<(String, String), String> {
    let v: Value = serde_json::from_slice(line).map_err(|e| format!("record: {e}"))?;
    let s =
        |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string).ok_or(format!("record without {k}"));
    Ok((s("id")?, s("path")?))
}

/// Records added, updated and removed between index shards, and which
/// new record lines (by SHA-256) each data file must provide.
#[derive(Debug, Default)]
pub struct Changes {
    pub added: BTreeSet<String>,
    pub updated: BTreeSet<String>,
    pub removed: BTreeSet<String>,
    pub tombstones: Vec<Tombstone>,
    pub wanted: BTreeMap<String, BTreeSet<Sha256>>,
}

impl Changes {
    /// Add what changed from `old` to `new` (one index shard's two
    /// versions; either may be empty). A record is its (id, document).
    pub fn compare(&mut self, old: &IndexShard, new: &IndexShard) {
        let flat = |ix: &IndexShard| -> BTreeMap<(String, String), (Sha256, String)> {
            ix.iter()
                .flat_map(|(id, es)| {
                    es.iter().map(move |e| ((id.clone(), e.document.clone()), (e.sha256, e.target.clone())))
                })
                .collect()
        };
        let (old, new) = (flat(old), flat(new));
        for (k, (sha, target)) in &new {
            match old.get(k) {
                Some((s, _)) if s == sha => continue,
                Some(_) => self.updated.insert(k.0.clone()),
                None => self.added.insert(k.0.clone()),
            };
            self.wanted.entry(target.clone()).or_default().insert(*sha);
        }
        for (k, (sha, target)) in &old {
            if !new.contains_key(k) {
                self.removed.insert(k.0.clone());
                self.tombstones.push(Tombstone {
                    id: k.0.clone(),
                    document: k.1.clone(),
                    sha256: *sha,
                    target: target.clone(),
                });
            }
        }
    }
}

/// Whether `path` is an index shard (`indexes/<type>/<source>/<shard>.index.json`).
pub fn is_index_shard(path: &str) -> bool {
    path.starts_with("indexes/") && path.matches('/').count() == 3
}

/// What `{export.derived}` holds for a delta.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    pub profile: String,
    pub base_export_id: Sha256,
    pub base_manifest_digest: Sha256,
    pub base_generation: u64,
    pub generation: u64,
    /// Old versions of changed or removed data files and index shards: path → blob.
    pub old: BTreeMap<String, Digest>,
    /// New versions of changed data files, index files and sealed metadata: path → blob.
    pub new: BTreeMap<String, Digest>,
}

#[derive(Debug)]
pub struct MirrorDelta;

fn failed(m: impl std::fmt::Display) -> ActionError {
    ActionError::Failed(m.to_string())
}

impl Action for MirrorDelta {
    fn id(&self) -> &'static str {
        "mirror-delta"
    }
    fn version(&self) -> u32 {
        3
    }
    fn inputs(&self) -> &'static [&'static str] {
        &[]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["profile", "kind", "tool", "epoch", "derived"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/kinds/mirror/tree.rs",
            "src/kinds/mirror/shard.rs",
            "src/kinds/mirror/normalize.rs",
            "src/actions/mod.rs",
            "src/canon.rs",
            "src/digest.rs",
            "src/shown.rs",
            "src/timefmt.rs",
            "src/formats/manifest.rs",
            "src/formats/tar.rs",
            "src/formats/gzip.rs",
            "src/kinds/mirror/pack.rs",
            "src/select.rs",
            "src/formats/dsse.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["manifest"]
    }
    fn publishes(&self) -> bool {
        true
    }
    fn tree(&self) -> bool {
        true
    }
    fn published_name(&self, output: &str, _params: &Value) -> Option<String> {
        (output == "manifest").then(|| "manifest.json".into())
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let input: Input = serde_json::from_value(cx.params["derived"].clone())
            .map_err(|e| failed(format!("derived: {e}")))?;
        let blob = |d: &Digest| cx.cache.read(d).map_err(ActionError::from);
        let index = |d: Option<&Digest>| -> Result<IndexShard, ActionError> {
            match d {
                None => Ok(IndexShard::new()),
                Some(d) => serde_json::from_slice(&blob(d)?).map_err(|e| failed(format!("index shard: {e}"))),
            }
        };
        // carried: sealed metadata, TUF metadata, changed index files, packed
        // on a second thread while the records are picked (it is most of the work)
        let pack_job = || -> Result<(Vec<String>, Vec<String>), ActionError> {
            let mut carried = Vec::new();
            let pack_path = cx.out.join("tree").join(super::pack::PATH);
            std::fs::create_dir_all(pack_path.parent().expect("has a folder"))
                .map_err(|e| ActionError::io(&pack_path, e))?;
            let mut pack =
                super::pack::Writer::create(&pack_path).map_err(|e| ActionError::io(&pack_path, e))?;
            let mut detached = Vec::new();
            for (path, d) in &input.new {
                if path.starts_with("data/") && !path.ends_with(super::tree::AGE_SUFFIX) {
                    continue;
                }
                let mut bytes = blob(d)?;
                // an envelope whose payload is a carried file travels without it
                let source = super::pack::DETACHABLE.iter().find(|(e, _)| e == path).map(|(_, s)| *s);
                if let Some(src) = source.and_then(|s| input.new.get(s)) {
                    if let Some(stripped) = super::pack::detach(path, &bytes, &blob(src)?) {
                        bytes = stripped;
                        detached.push(path.clone());
                    }
                }
                pack.add(path, &bytes).map_err(|e| ActionError::io(&pack_path, e))?;
                carried.push(path.clone());
            }
            pack.finish().map_err(|e| ActionError::io(&pack_path, e))?;
            Ok((carried, detached))
        };
        let (picked, packed) = std::thread::scope(|scope| {
            let packing = scope.spawn(pack_job);
            let picked = (|| -> Result<_, ActionError> {
                // records: compare each changed index shard, old against new
                let shards: BTreeSet<&String> =
                    input.old.keys().chain(input.new.keys()).filter(|p| is_index_shard(p)).collect();
                let mut ch = Changes::default();
                for shard in shards {
                    ch.compare(&index(input.old.get(shard))?, &index(input.new.get(shard))?);
                }
                let Changes { added, updated, removed, mut tombstones, wanted } = ch;
                // an id with one document added and another removed is in both lists
                tombstones.sort();
                let mut records = Vec::new();
                // encrypted data files travel whole (below): no records are read from them
                for (target, shas) in wanted.iter().filter(|(t, _)| !t.ends_with(super::tree::AGE_SUFFIX)) {
                    let d = input
                        .new
                        .get(target)
                        .ok_or_else(|| failed(format!("{target}: not among the changed files")))?;
                    let lines = read_lines(&blob(d)?).map_err(|e| failed(format!("{target}: {e}")))?;
                    let picked: Vec<&[u8]> =
                        lines.iter().map(Vec::as_slice).filter(|l| shas.contains(&Sha256::of(l))).collect();
                    if picked.len() != shas.len() {
                        return Err(failed(format!(
                            "{target}: the index names records the data file does not hold"
                        )));
                    }
                    let rel = format!("delta/records/{}", target.trim_start_matches("data/raw/"));
                    let dst = cx.out.join("tree").join(&rel);
                    std::fs::create_dir_all(dst.parent().expect("has a folder"))
                        .map_err(|e| ActionError::io(&dst, e))?;
                    let (sha256, _) = super::shard::encode_jsonl(picked.iter().copied(), cx.out, &dst, 19)
                        .map_err(|e| ActionError::io(&dst, e))?;
                    records.push(RecordsFile {
                        target: target.clone(),
                        path: rel,
                        sha256,
                        count: picked.len() as u64,
                    });
                }
                Ok((added, updated, removed, tombstones, records))
            })();
            (picked, packing.join())
        });
        let (added, updated, removed, tombstones, records) = picked?;
        let (carried, detached) = packed.map_err(|_| failed("packing the carried files panicked"))??;
        let diff = Diff {
            base_export_id: input.base_export_id,
            base_manifest_digest: input.base_manifest_digest,
            base_generation: input.base_generation,
            generation: input.generation,
            profile: input.profile.clone(),
            added: added.into_iter().collect(),
            updated: updated.into_iter().collect(),
            removed: removed.into_iter().collect(),
            tombstones,
            records,
            carried,
            detached,
            tool: json!({"name": "export-center", "version": cx.param_str("tool")?}),
        };
        let diff_bytes = canon::to_pretty(&serde_json::to_value(&diff).expect("serialisable"));
        cx.write("tree/delta/manifest.diff.json", &diff_bytes)?;
        // the delta's manifest: every file it holds
        let mut files = Vec::new();
        let root = cx.out.join("tree");
        for e in walkdir::WalkDir::new(&root).sort_by_file_name() {
            let e = e.map_err(|e| failed(e.to_string()))?;
            if !e.file_type().is_file() {
                continue;
            }
            let rel = e.path().strip_prefix(&root).expect("below").to_string_lossy().into_owned();
            if rel == "delta/manifest.diff.json" {
                continue;
            }
            let (sha256, bytes) =
                super::shard::file_digest(e.path()).map_err(|x| ActionError::io(e.path(), x))?;
            files.push(FileRef { path: rel, sha256, bytes });
        }
        let m = Manifest {
            schema_version: manifest::SCHEMA_VERSION,
            profile: cx.param_str("profile")?.to_string(),
            kind: cx.param_str("kind")?.to_string(),
            selectors: json!({}),
            sources: json!([]),
            created_at: crate::timefmt::format_utc(cx.param_i64("epoch")?),
            tool: json!({"name": "export-center", "version": cx.param_str("tool")?}),
            bundle: FileRef {
                path: "delta/manifest.diff.json".into(),
                sha256: Sha256::of(&diff_bytes),
                bytes: diff_bytes.len() as u64,
            },
            rerun_hash: manifest::rerun_hash(&[]),
            contents: Vec::new(),
            rejected: Vec::new(),
            warnings: Vec::new(),
            files,
            policy: None,
        };
        cx.write("manifest", &canon::to_pretty(&serde_json::to_value(&m).expect("serialisable")))
    }
}
