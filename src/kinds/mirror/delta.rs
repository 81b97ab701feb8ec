//! Kind `mirror:delta`: what changed between two generations of a
//! `mirror:full` export, small enough to carry into an air gap, and the
//! `mirror-delta` action that writes it.
//!
//! A derived kind ([`crate::kinds::Derived`]): `base = "<profile>"` takes
//! the delta from the generation before that profile's live one (kept
//! under `out/.generations/`) to the live one; `base = "<path>"` takes it
//! from the export folder at that path (what a site last imported) to the
//! live export of the profile it names. [`Input::read`] reads both
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
//! - `delta/full/<path>`: files of the new full export a site cannot make
//!   without the signing key or without the whole corpus: `export.json`,
//!   changed index files, `manifest.json`, provenance, envelopes,
//!   `checksums.txt` and `tuf/metadata/*`;
//! - the delta's own `manifest.json` and seal.
//!
//! `mirror apply` (`crate::ops::mirror`) rebuilds the new full export
//! from the base and these files, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::tree::{self, ExportJson, IndexShard};
use crate::actions::{Action, ActionCx, ActionError};
use crate::canon;
use crate::digest::{Digest, Sha256};
use crate::formats::manifest::{self, FileRef, Manifest};
use crate::kinds::DeriveError;
use crate::profile::{ProfileDef, Workspace};

/// Files of a full export carried whole in a delta, besides changed index files.
pub const SEALED: &[&str] = &[
    "export.json",
    "manifest.json",
    "provenance.json",
    "manifest.dsse.json",
    "provenance.dsse.json",
    "checksums.txt",
];

/// The biggest file read from an export for a delta (a data file).
const MAX_FILE: u64 = 1 << 30;

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
    /// Paths of the new full export carried under `delta/full/`.
    pub carried: Vec<String>,
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

fn read(dir: &Path, rel: &str) -> Result<Vec<u8>, String> {
    crate::bounded::read_regular(&dir.join(rel), MAX_FILE)
        .map_err(|e| format!("{}: {e}", crate::shown::path(&dir.join(rel))))
}

fn export_json(dir: &Path) -> Result<ExportJson, String> {
    let b = read(dir, tree::EXPORT_JSON)?;
    serde_json::from_slice(&b)
        .map_err(|e| format!("{}: {e}", crate::shown::path(&dir.join(tree::EXPORT_JSON))))
}

/// Where the base of a delta profile is.
enum Base {
    Profile(String),
    Path(PathBuf),
}

fn base_of(ws: &Workspace, p: &ProfileDef) -> Result<Base, DeriveError> {
    let b = p
        .options
        .get("base")
        .and_then(|(v, _)| v.as_str())
        .ok_or_else(|| DeriveError::Invalid("base is missing".into()))?;
    if ws.profiles.contains_key(b) {
        return Ok(Base::Profile(b.to_string()));
    }
    Ok(Base::Path(ws.root.join(b)))
}

impl Input {
    /// The delta of profile `p`: its base and the live export it leads to.
    pub fn read(ws: &Workspace, p: &ProfileDef, cache: &crate::cache::Cache) -> Result<Input, DeriveError> {
        let (full, old_dir) = match base_of(ws, p)? {
            Base::Profile(full) => {
                let live = ws.out_dir.join(&full);
                let e = export_json(&live)
                    .map_err(|_| DeriveError::NoBase(format!("{full} has no published export yet")))?;
                if e.generation <= 1 {
                    return Err(DeriveError::NoBase(format!(
                        "{full} is at its first generation: no earlier one to take a delta from"
                    )));
                }
                // out/.generations/<profile>/<n>/: where publishing keeps earlier generations
                let dir = ws.out_dir.join(".generations").join(&full).join((e.generation - 1).to_string());
                if !dir.is_dir() {
                    return Err(DeriveError::NoBase(format!(
                        "generation {} of {full} is not kept (keep-generations)",
                        e.generation - 1
                    )));
                }
                (full, dir)
            }
            Base::Path(dir) => {
                let e = export_json(&dir).map_err(DeriveError::BaseMissing)?;
                (e.profile, dir)
            }
        };
        let new_dir = ws.out_dir.join(&full);
        let old = export_json(&old_dir).map_err(DeriveError::BaseMissing)?;
        let new = export_json(&new_dir).map_err(|e| DeriveError::NoBase(format!("{full}: {e}")))?;
        if old.profile != new.profile {
            return Err(DeriveError::Invalid(format!(
                "the base is an export of {}, not of {full}",
                old.profile
            )));
        }
        let invalid = |m: String| DeriveError::Invalid(m);
        let sha =
            |dir: &Path, f: &str| read(dir, f).map(|b| Sha256::of(&b)).map_err(DeriveError::BaseMissing);
        let mut input = Input {
            profile: full.clone(),
            base_export_id: sha(&old_dir, "checksums.txt")?,
            base_manifest_digest: sha(&old_dir, "manifest.json")?,
            base_generation: old.generation,
            generation: new.generation,
            old: BTreeMap::new(),
            new: BTreeMap::new(),
        };
        let olds: BTreeMap<&str, Sha256> = old.files.iter().map(|f| (f.path.as_str(), f.sha256)).collect();
        let news: BTreeMap<&str, Sha256> = new.files.iter().map(|f| (f.path.as_str(), f.sha256)).collect();
        let put = |dir: &Path, path: &str| -> Result<Digest, DeriveError> {
            let b = read(dir, path).map_err(invalid)?;
            cache.put(&b).map_err(|e| DeriveError::Invalid(e.to_string()))
        };
        for (path, s) in &news {
            if olds.get(path) == Some(s) || path.starts_with("data/normalized/") {
                continue;
            }
            input.new.insert(path.to_string(), put(&new_dir, path)?);
            if olds.contains_key(path) && (path.starts_with("data/raw/") || path.starts_with("indexes/")) {
                input.old.insert(path.to_string(), put(&old_dir, path)?);
            }
        }
        for path in olds.keys() {
            if !news.contains_key(path) && (path.starts_with("data/raw/") || path.starts_with("indexes/")) {
                input.old.insert(path.to_string(), put(&old_dir, path)?);
            }
        }
        for f in SEALED {
            if new_dir.join(f).exists() {
                input.new.insert(f.to_string(), put(&new_dir, f)?);
            }
        }
        let meta = new_dir.join("tuf/metadata");
        for e in
            std::fs::read_dir(&meta).map_err(|e| invalid(format!("{}: {e}", crate::shown::path(&meta))))?
        {
            let name = e.map_err(|e| invalid(e.to_string()))?.file_name().to_string_lossy().into_owned();
            let rel = format!("tuf/metadata/{name}");
            input.new.insert(rel.clone(), put(&new_dir, &rel)?);
        }
        Ok(input)
    }
}

/// The profiles a delta needs built first, for [`crate::kinds::Derived::bases`].
pub fn bases(ws: &Workspace, p: &ProfileDef) -> Result<Vec<String>, DeriveError> {
    Ok(match base_of(ws, p)? {
        Base::Profile(full) => vec![full],
        Base::Path(dir) => {
            let e = export_json(&dir).map_err(DeriveError::BaseMissing)?;
            vec![e.profile]
        }
    })
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
        1
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
        for (target, shas) in &wanted {
            let d = input
                .new
                .get(target)
                .ok_or_else(|| failed(format!("{target}: not among the changed files")))?;
            let lines = read_lines(&blob(d)?).map_err(|e| failed(format!("{target}: {e}")))?;
            let picked: Vec<&[u8]> =
                lines.iter().map(Vec::as_slice).filter(|l| shas.contains(&Sha256::of(l))).collect();
            if picked.len() != shas.len() {
                return Err(failed(format!("{target}: the index names records the data file does not hold")));
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
        // carried: sealed metadata, TUF metadata, changed index files
        let mut carried = Vec::new();
        for (path, d) in &input.new {
            if path.starts_with("data/") {
                continue;
            }
            cx.write(&format!("tree/delta/full/{path}"), &blob(d)?)?;
            carried.push(path.clone());
        }
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
        };
        cx.write("manifest", &canon::to_pretty(&serde_json::to_value(&m).expect("serialisable")))
    }
}
