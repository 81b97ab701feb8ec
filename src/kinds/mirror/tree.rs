//! The mirror tree: where each file of a mirror lives and what the small
//! JSON files (`export.json`, the indexes, a shard's entry) hold. Shared
//! by the build actions, `mirror apply` and `mirror diff`, so the layout
//! is written down once.
//!
//! Target paths (the TUF targets, the OCI layers, the tar members):
//!
//! | path                                               | what                                   |
//! |----------------------------------------------------|----------------------------------------|
//! | `export.json`                                      | [`ExportJson`]                         |
//! | `indexes/<type>.index.json`                        | [`TopIndex`]: the type's index shards  |
//! | `indexes/<type>/<source>/<shard>.index.json`       | [`IndexShard`]: id → entries           |
//! | `data/raw/<type>/<source>/<shard>.jsonl.zst`       | the shard's records, one per line      |
//! | `data/normalized/advisories/<source>/<shard>.jsonl.zst` | one row per advisory and package  |
//!
//! With encryption every `data/` path ends in `.age` ([`AGE_SUFFIX`]) and
//! its [`TreeFile`] names the plaintext's digest too. Invariants: paths
//! hold no control character, no `..` and no leading `/`; records in a
//! data file are sorted by (id, document path) and each line is the
//! record's canonical JSON, so a data file is a function of its records
//! and the compression level (what `mirror apply` relies on).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Sha256;

/// The record types a mirror carries (every type `parse-documents` makes).
pub const TYPES: [&str; 3] = ["advisories", "vex", "sboms"];

pub fn raw_path(ty: &str, source: &str, shard: &str) -> String {
    format!("data/raw/{ty}/{source}/{shard}.jsonl.zst")
}
pub fn normalized_path(source: &str, shard: &str) -> String {
    format!("data/normalized/advisories/{source}/{shard}.jsonl.zst")
}
pub fn index_path(ty: &str, source: &str, shard: &str) -> String {
    format!("indexes/{ty}/{source}/{shard}.index.json")
}
pub fn top_index_path(ty: &str) -> String {
    format!("indexes/{ty}.index.json")
}
pub const EXPORT_JSON: &str = "export.json";

/// A file of the tree: its path, length and SHA-256.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct TreeFile {
    pub path: String,
    pub sha256: Sha256,
    pub length: u64,
    /// For an encrypted (`.age`) file: the SHA-256 and length of its plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<Plain>,
}

/// The plaintext of an encrypted file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Plain {
    pub sha256: Sha256,
    pub length: u64,
}

/// The extension of encrypted data files.
pub const AGE_SUFFIX: &str = ".age";

/// One record's line in an index shard.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexEntry {
    /// The document's path inside its source.
    pub document: String,
    /// SHA-256 of the record's line (its canonical JSON, without the newline).
    pub sha256: Sha256,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// The data file holding it.
    pub target: String,
}

/// `indexes/<type>/<source>/<shard>.index.json`: record id → its entries
/// (one per document carrying that id, in document order).
pub type IndexShard = BTreeMap<String, Vec<IndexEntry>>;

/// `indexes/<type>.index.json`: the type's index shards.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TopIndex {
    #[serde(rename = "type")]
    pub ty: String,
    pub records: u64,
    pub shards: Vec<TreeFile>,
}

/// What one shard step made (its `entry` output).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ShardEntry {
    #[serde(rename = "type")]
    pub ty: String,
    pub source: String,
    pub shard: String,
    pub records: u64,
    /// Absent when no record was selected (nothing is published).
    pub raw: Option<TreeFile>,
    pub normalized: Option<TreeFile>,
    pub index: Option<TreeFile>,
    /// Normalised rows (advisory × package).
    pub rows: u64,
}

/// `export.json`: what a mirror generation holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExportJson {
    pub schema_version: u32,
    pub profile: String,
    pub kind: String,
    pub generation: u64,
    pub created_at: String,
    pub selectors: serde_json::Value,
    pub sources: serde_json::Value,
    /// Records by type; `normalizedRows` for advisory rows.
    pub counts: BTreeMap<String, u64>,
    /// Bytes by area (`raw`, `normalized`, `indexes`).
    pub sizes: BTreeMap<String, u64>,
    /// The zstd level of the data files (`mirror apply` re-encodes with it).
    pub compression_level: i64,
    /// SHA-256 of everything a generation's bytes depend on but its number
    /// (the files below, the pinned time, expiries, keys, tool): the same
    /// identity keeps the same generation.
    pub identity: Sha256,
    /// `age` recipients when the data files are encrypted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// Every other file of the tree (indexes and data), by path.
    pub files: Vec<TreeFile>,
    pub tool: serde_json::Value,
}

/// The consistent-snapshot name of a target under `tuf/targets/`:
/// `<dir>/<sha256>.<basename>` (TUF "writing consistent snapshots").
pub fn target_file(path: &str, sha256: &Sha256) -> String {
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("tuf/targets/{dir}/{}.{name}", sha256.hex()),
        None => format!("tuf/targets/{}.{path}", sha256.hex()),
    }
}

/// The `export.json` of the mirror export in `dir`; errors name the file.
pub fn read_export_json(dir: &std::path::Path) -> Result<ExportJson, String> {
    let p = dir.join(EXPORT_JSON);
    let b = crate::bounded::read_regular(&p, 256 << 20)
        .map_err(|e| format!("{}: {e}", crate::shown::path(&p)))?;
    serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", crate::shown::path(&p)))
}

/// Whether `p` is a safe relative tree path.
pub fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.chars().any(|c| c.is_control())
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}
