//! Sources: enumerate a source's documents, digest them, split them into
//! stable shards.
//!
//! A source is a directory or a `.tar` / `.tar.gz` / `.tgz` / `.tar.zst` /
//! `.tzst` archive. Documents are the regular files whose source-relative
//! path (`/`-separated; for archives the member path) matches `include`
//! (default `**/*.json`) and no `exclude`. Directories skip dot-folders
//! (`.git`) and refuse symbolic links and special files; archives refuse
//! absolute paths, `..`, links and devices (see [`archive`]).
//!
//! Shards: a document's shard is `u32(blake3(path)[..4]) mod shards`
//! (`shards` fixed per source, or [`crate::profile::auto_shards`] of its size),
//! stable across runs and independent of every other document, so one
//! changed advisory dirties one shard. A shard's digest is the BLAKE3 over
//! its sorted `(path, sha256)` list: it is the shard's only contribution to
//! step keys.
//!
//! Limits (per source, `profiles.toml`): a document over
//! `max-document-bytes` (default 64 MiB) is refused by its stat or header
//! size before it is read; an archive whose members expand past
//! `max-archive-bytes` (default 4 GiB) is refused as soon as the running
//! total passes it. The source path itself may be a symbolic link (to a
//! folder or a regular archive); anything else that is not a folder or a
//! regular file (a FIFO, `/dev/zero`) is refused without being read: files
//! are opened with `O_NONBLOCK` and checked with `fstat` after the open.
//! Every name from input in an error or warning goes through
//! [`crate::shown`].
//!
//! Invariants: a no-op run reads no unchanged directory file (stat cache)
//! and no unchanged archive (its index is cached by the archive's stat);
//! the source's tree digest is SHA-256 over `"<sha256>  <path>\n"` lines in
//! path order, the same text `sha256sum` prints.

pub mod archive;
pub mod dir;

use std::io::Read;
use std::path::PathBuf;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::cache::memo::{Area, Memo};
use crate::cache::{Cache, CacheError};
use crate::digest::{Digest, FieldHasher, Sha256};
use crate::profile::SourceDef;
use crate::shown;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source {source_name}: {path}: {reason}")]
    Refused { source_name: String, path: String, reason: String },
    #[error("source {source_name}: {path}: {err}")]
    Io { source_name: String, path: String, err: std::io::Error },
    /// A file changed between its digest and its use: transient, not invalid.
    #[error("source {source_name}: {path}: changed while the build was running; run the build again")]
    Changed { source_name: String, path: String },
    #[error(transparent)]
    Cache(#[from] CacheError),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DocEntry {
    pub path: String,
    pub sha256: Sha256,
    pub size: u64,
}

/// One stable bucket of a source's documents.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub docs: Vec<DocEntry>,
    pub digest: Digest,
    /// For archives: the CAS blob holding the members' bytes (see [`archive::Pack`]).
    pub pack: Option<Digest>,
}

/// Where a source's bytes are read from when a step runs.
#[derive(Clone, Debug)]
pub enum Origin {
    Dir(PathBuf),
    Archive,
}

/// A source as seen by this run.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub def: SourceDef,
    pub origin: Origin,
    /// Non-empty shards, by index.
    pub shards: Vec<Shard>,
    pub tree: Sha256,
    pub documents: usize,
    /// Files (or archives) actually read this run; 0 on a no-op.
    pub files_read: usize,
}

pub struct Filter {
    include: GlobSet,
    exclude: GlobSet,
}

impl Filter {
    pub fn new(def: &SourceDef) -> Filter {
        let build = |globs: &[String], default: &[&str]| {
            let mut b = GlobSetBuilder::new();
            let list: Vec<String> = if globs.is_empty() {
                default.iter().map(|s| s.to_string()).collect()
            } else {
                globs.to_vec()
            };
            for g in list {
                // validated when profiles.toml was parsed
                b.add(Glob::new(&g).expect("validated glob"));
            }
            b.build().expect("validated globs")
        };
        let (include, exclude) = def.format.default_globs();
        Filter { include: build(&def.include, include), exclude: build(&def.exclude, exclude) }
    }
    pub fn accepts(&self, path: &str) -> bool {
        self.include.is_match(path) && !self.exclude.is_match(path)
    }
}

pub fn shard_of(path: &str, shards: u32) -> u32 {
    let h = blake3::hash(path.as_bytes());
    u32::from_le_bytes(h.as_bytes()[..4].try_into().expect("4 bytes")) % shards
}

pub fn shard_digest(docs: &[DocEntry]) -> Digest {
    let mut h = FieldHasher::new("shard-v1");
    for d in docs {
        h.field(d.path.as_bytes()).field(&d.sha256.0);
    }
    h.finish()
}

/// Group documents (sorted by path) into shards, each sorted by path.
pub fn into_shards(docs: Vec<DocEntry>, shards: u32) -> Vec<Shard> {
    debug_assert!(docs.windows(2).all(|w| w[0].path < w[1].path));
    let mut buckets: Vec<Vec<DocEntry>> = vec![Vec::new(); shards as usize];
    for d in docs {
        let i = shard_of(&d.path, shards) as usize;
        buckets[i].push(d);
    }
    buckets
        .into_iter()
        .enumerate()
        .filter(|(_, b)| !b.is_empty())
        .map(|(i, docs)| Shard { index: i as u32, digest: shard_digest(&docs), docs, pack: None })
        .collect()
}

/// SHA-256 over `"<sha256>  <path>\n"` for `docs` (sorted by path), the
/// text `sha256sum` prints; streamed, and memoised per source against a
/// BLAKE3 of the listing so a no-op run does not re-hash it.
pub fn tree_digest(cache: &Cache, scope: &str, docs: &[DocEntry]) -> Sha256 {
    use sha2::Digest as _;
    let mut listing = blake3::Hasher::new();
    for d in docs {
        listing.update(&(d.path.len() as u64).to_le_bytes()).update(d.path.as_bytes()).update(&d.sha256.0);
    }
    let listing = *listing.finalize().as_bytes();
    let memo_key = format!("tree\0{scope}");
    if let Some(m) = cache.load_memo(Area::Stat, memo_key.as_bytes()) {
        if m.data.len() == 64 && m.data[..32] == listing {
            return Sha256(m.data[32..].try_into().expect("32 bytes"));
        }
    }
    let mut h = sha2::Sha256::new();
    for d in docs {
        h.update(d.sha256.hex().as_bytes());
        h.update(b"  ");
        h.update(d.path.as_bytes());
        h.update(b"\n");
    }
    let tree = Sha256(h.finalize().into());
    let mut b = listing.to_vec();
    b.extend_from_slice(&tree.0);
    let _ = cache.save_memo(Area::Stat, memo_key.as_bytes(), &Memo { blobs: Vec::new(), data: b });
    tree
}

pub use crate::bounded::open_regular;

/// The refusal of a document over the source's `max-document-bytes`.
pub fn too_big(def: &SourceDef, path: String, size: u64) -> SourceError {
    SourceError::Refused {
        source_name: def.name.clone(),
        path,
        reason: format!(
            "document of {size} bytes is over the {}-byte limit (max-document-bytes)",
            def.limits.max_document_bytes
        ),
    }
}

/// Take a snapshot of one source.
pub fn snapshot(def: &SourceDef, cache: &Cache) -> Result<Snapshot, SourceError> {
    let md = std::fs::metadata(&def.path).map_err(|err| SourceError::Io {
        source_name: def.name.clone(),
        path: shown::path(&def.path),
        err,
    })?;
    if md.is_dir() {
        dir::snapshot(def, cache)
    } else if archive::Compression::of(&def.path).is_some() {
        archive::snapshot(def, cache)
    } else {
        Err(SourceError::Refused {
            source_name: def.name.clone(),
            path: shown::path(&def.path),
            reason: "not a directory or a .tar/.tar.gz/.tgz/.tar.zst/.tzst archive".into(),
        })
    }
}

/// Reads the bytes of a shard's documents for a running step, one document
/// in memory at a time (a pack is read by seeking in its CAS blob file).
pub enum ShardReader {
    Dir { root: PathBuf, max: u64 },
    Pack(archive::Pack),
}

impl ShardReader {
    pub fn open(snap: &Snapshot, shard: &Shard, cache: &Cache) -> Result<ShardReader, SourceError> {
        let max = snap.def.limits.max_document_bytes;
        Ok(match (&snap.origin, shard.pack) {
            (Origin::Dir(root), _) => ShardReader::Dir { root: root.clone(), max },
            (Origin::Archive, Some(pack)) => {
                let file = cache.open_blob(&pack)?;
                ShardReader::Pack(archive::Pack::open(file).map_err(|reason| SourceError::Refused {
                    source_name: snap.def.name.clone(),
                    path: format!("pack {pack}"),
                    reason,
                })?)
            }
            (Origin::Archive, None) => {
                return Err(SourceError::Refused {
                    source_name: snap.def.name.clone(),
                    path: format!("shard {}", shard.index),
                    reason: "archive shard without a pack".into(),
                })
            }
        })
    }

    /// The bytes of `doc`, verified against its digest.
    pub fn read(&self, source: &str, doc: &DocEntry) -> Result<Vec<u8>, SourceError> {
        let shown = || shown::name(&doc.path).into_owned();
        let changed = || SourceError::Changed { source_name: source.to_string(), path: shown() };
        let io = |err| SourceError::Io { source_name: source.to_string(), path: shown(), err };
        let bytes = match self {
            ShardReader::Dir { root, max } => {
                let (file, md) = match open_regular(&root.join(&doc.path), false).map_err(io)? {
                    Ok(x) => x,
                    Err(_) => return Err(changed()),
                };
                if md.len() != doc.size || md.len() > *max {
                    return Err(changed());
                }
                let mut bytes = Vec::with_capacity(md.len() as usize);
                file.take(*max + 1).read_to_end(&mut bytes).map_err(io)?;
                bytes
            }
            ShardReader::Pack(p) => p.read(&doc.path).map_err(io)?.ok_or_else(|| SourceError::Refused {
                source_name: source.to_string(),
                path: shown(),
                reason: "missing from its pack".into(),
            })?,
        };
        if Sha256::of(&bytes) != doc.sha256 {
            return Err(changed());
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_independent() {
        let d = |p: &str| DocEntry { path: p.into(), sha256: Sha256::of(p.as_bytes()), size: 1 };
        let a = into_shards(vec![d("x/1.json"), d("y/2.json"), d("z/3.json")], 8);
        let b = into_shards(vec![d("x/1.json"), d("z/3.json")], 8);
        let idx =
            |s: &[Shard], p: &str| s.iter().find(|sh| sh.docs.iter().any(|x| x.path == p)).unwrap().index;
        assert_eq!(idx(&a, "x/1.json"), idx(&b, "x/1.json"));
        assert_eq!(idx(&a, "z/3.json"), shard_of("z/3.json", 8));
    }
}
