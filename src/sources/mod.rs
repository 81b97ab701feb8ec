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
//! Shards ([`assign`], `sharding-v2`): documents in path order are cut
//! into *runs* of neighbours in one folder, and each run goes whole to the
//! shard `u32(blake3(key)[0..4]) mod shards` (`shards` fixed per source, or
//! [`crate::profile::auto_shards`] of its size). A run ends at the end of
//! its folder or after a document whose path hash (`blake3(path)[4..8]`)
//! is 0 mod [`run_docs`]; its key is that boundary path (or the folder, for a run
//! cut by its folder's end). So documents of one package folder share a
//! shard, hence one zstd frame, and compress against each other (bundles
//! shrink), while the boundaries depend on nothing but each path: one
//! changed advisory dirties one shard, and an added or removed document
//! at most two (a boundary document splits or merges one run). With
//! [`run_docs`] = 1 (few documents per shard) a run is one document and
//! the shard is `blake3(path) mod shards`, as before runs. A shard's
//! digest is the BLAKE3 over its sorted `(path, sha256)` list: it is the
//! shard's only contribution to step keys.
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
//! [`crate::shown`]. Documents are hashed as a stream; a step reads one
//! whole ([`ShardReader::read`], JSON documents) or as a stream
//! ([`ShardReader::stream`], a `tree` source's files of any size).
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

/// Version of the assignment of documents to shards: part of every cached
/// archive index's key, so a cache written under another assignment is not
/// served.
pub const SHARDING: &str = "sharding-v2";

/// A run is cut after at most this many documents on average (2^7).
const MAX_RUN_LOG: f64 = 7.0;
/// Runs per shard aimed at, so that shards stay balanced.
const RUNS_PER_SHARD: f64 = 4.0;

/// Two independent 32-bit hashes of `bytes`: BLAKE3 bytes 0..4 pick the
/// shard, bytes 4..8 decide boundaries (one hash for both would send every
/// boundary to shards that divide the run length).
fn hash32(bytes: &[u8]) -> (u32, u32) {
    let h = blake3::hash(bytes);
    let word = |i: usize| u32::from_le_bytes(h.as_bytes()[i..i + 4].try_into().expect("4 bytes"));
    (word(0), word(4))
}

/// Average run length for `docs` documents over `shards` shards: the power
/// of two nearest `docs / shards / 4`, from 1 to 128, so a shard holds
/// about four runs (automatic sharding: 512 documents per shard, runs of
/// 128) and a few documents pinned to many shards get runs of one.
pub fn run_docs(docs: usize, shards: u32) -> u32 {
    let per = docs as f64 / f64::from(shards.max(1)) / RUNS_PER_SHARD;
    if per <= 1.0 {
        return 1;
    }
    1 << (per.log2().round().clamp(0.0, MAX_RUN_LOG) as u32)
}

fn folder(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// The shard of each of `paths` (sorted, distinct), `shards` > 0: see the
/// module doc.
pub fn assign<S: AsRef<str>>(paths: &[S], shards: u32) -> Vec<u32> {
    let run = run_docs(paths.len(), shards);
    let mut out = Vec::with_capacity(paths.len());
    let mut start = 0;
    for (i, p) in paths.iter().enumerate() {
        let p = p.as_ref();
        let (pick, cut) = hash32(p.as_bytes());
        let boundary = cut.is_multiple_of(run);
        let last_of_folder = paths.get(i + 1).is_none_or(|next| folder(next.as_ref()) != folder(p));
        if boundary || last_of_folder {
            let shard =
                if boundary { pick } else { hash32(format!("{}\0", folder(p)).as_bytes()).0 } % shards;
            out.extend(std::iter::repeat_n(shard, i + 1 - start));
            start = i + 1;
        }
    }
    debug_assert_eq!(out.len(), paths.len());
    out
}

pub fn shard_digest(docs: &[DocEntry]) -> Digest {
    let mut h = FieldHasher::new("shard-v1");
    for d in docs {
        h.field(d.path.as_bytes()).field(&d.sha256.0);
    }
    h.finish()
}

/// Group documents (sorted by path) into shards ([`assign`]), each sorted
/// by path.
pub fn into_shards(docs: Vec<DocEntry>, shards: u32) -> Vec<Shard> {
    debug_assert!(docs.windows(2).all(|w| w[0].path < w[1].path));
    let assigned = assign(&docs.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), shards);
    let mut buckets: Vec<Vec<DocEntry>> = vec![Vec::new(); shards as usize];
    for (d, i) in docs.into_iter().zip(assigned) {
        buckets[i as usize].push(d);
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
        h.update(d.sha256.hex_str().as_str().as_bytes());
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

    /// Copy the bytes of `doc` into `out` in 64 KiB pieces, never holding
    /// the document: for files of any size. The digest is checked at the
    /// end (a file that changed is [`SourceError::Changed`], after `out`
    /// got its bytes: the caller discards them); errors of `out` are
    /// [`SourceError::Io`] naming the document.
    pub fn stream(
        &self,
        source: &str,
        doc: &DocEntry,
        out: &mut dyn std::io::Write,
    ) -> Result<(), SourceError> {
        use sha2::Digest as _;
        let shown = || shown::name(&doc.path).into_owned();
        let changed = || SourceError::Changed { source_name: source.to_string(), path: shown() };
        let io = |err| SourceError::Io { source_name: source.to_string(), path: shown(), err };
        let mut sha = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut left = doc.size;
        match self {
            ShardReader::Dir { root, max } => {
                let (file, md) = match open_regular(&root.join(&doc.path), false).map_err(io)? {
                    Ok(x) => x,
                    Err(_) => return Err(changed()),
                };
                if md.len() != doc.size || md.len() > *max {
                    return Err(changed());
                }
                let mut r = file.take(doc.size);
                while left > 0 {
                    let n = r.read(&mut buf).map_err(io)?;
                    if n == 0 {
                        return Err(changed());
                    }
                    sha.update(&buf[..n]);
                    out.write_all(&buf[..n]).map_err(io)?;
                    left -= n as u64;
                }
            }
            ShardReader::Pack(p) => {
                let Some((pos, len)) = p.locate(&doc.path) else {
                    return Err(SourceError::Refused {
                        source_name: source.to_string(),
                        path: shown(),
                        reason: "missing from its pack".into(),
                    });
                };
                if len != doc.size {
                    return Err(changed());
                }
                let mut at = pos;
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    p.read_at(&mut buf[..n], at).map_err(io)?;
                    sha.update(&buf[..n]);
                    out.write_all(&buf[..n]).map_err(io)?;
                    left -= n as u64;
                    at += n as u64;
                }
            }
        }
        if Sha256(sha.finalize().into()) != doc.sha256 {
            return Err(changed());
        }
        Ok(())
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
        // few documents per shard: runs of one, the shard is the path's hash
        assert_eq!(run_docs(3, 8), 1);
        let h = |p: &str| u32::from_le_bytes(blake3::hash(p.as_bytes()).as_bytes()[..4].try_into().unwrap());
        assert_eq!(idx(&a, "z/3.json"), h("z/3.json") % 8);
    }

    fn corpus(folders: usize, per_folder: usize, flat: usize) -> Vec<String> {
        let mut v: Vec<String> = (0..folders)
            .flat_map(|f| (0..per_folder).map(move |i| format!("eco/pkg-{f:04}/ADV-{f}-{i:05}.json")))
            .chain((0..flat).map(|i| format!("flat/GO-{i:06}.json")))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn automatic_shards_get_runs_of_128_and_folders_stay_together() {
        let paths = corpus(300, 40, 20_000);
        let shards = crate::profile::auto_shards(paths.len());
        assert_eq!(run_docs(paths.len(), shards), 128);
        let got = assign(&paths, shards);
        // a folder smaller than a run lies in one or two shards (a boundary
        // inside it cuts it once: 1 - (127/128)^39 = 26 % of 40-document
        // folders), where hashing each path would spread it over ~30 of 64
        let mut of_folder: std::collections::BTreeMap<&str, std::collections::BTreeSet<u32>> =
            Default::default();
        for (p, s) in paths.iter().zip(&got) {
            of_folder.entry(folder(p)).or_default().insert(*s);
        }
        let small: Vec<usize> =
            of_folder.iter().filter(|(f, _)| f.starts_with("eco/")).map(|(_, s)| s.len()).collect();
        let mean = small.iter().sum::<usize>() as f64 / small.len() as f64;
        assert!(mean < 1.5 && small.iter().all(|&n| n <= 3), "shards per small folder: {small:?}");
        // the flat folder is cut into runs spread over the shards
        let used: std::collections::BTreeSet<u32> =
            paths.iter().zip(&got).filter(|(p, _)| p.starts_with("flat/")).map(|(_, s)| *s).collect();
        assert!(used.len() * 4 > shards as usize * 3, "{} of {shards} shards used", used.len());
        // shards are balanced: four runs of random length per shard, so the
        // largest stays under 4x the mean, and the shard an edited document
        // falls in (size-biased: sum(n^2)/sum(n)) under 1.5x
        let mut sizes = vec![0usize; shards as usize];
        for s in &got {
            sizes[*s as usize] += 1;
        }
        let mean = paths.len() as f64 / f64::from(shards);
        let biased = sizes.iter().map(|&n| (n * n) as f64).sum::<f64>() / paths.len() as f64;
        assert!(sizes.iter().all(|&n| (n as f64) < 4.0 * mean), "{sizes:?}");
        assert!(
            biased < 1.5 * mean,
            "an edit hits a shard of {biased:.0} documents on average, mean {mean:.0}"
        );
    }

    #[test]
    fn an_added_or_removed_document_moves_at_most_one_run() {
        let paths = corpus(300, 40, 20_000);
        let shards = crate::profile::auto_shards(paths.len());
        let before = assign(&paths, shards);
        let of = |paths: &[String], got: &[u32]| -> std::collections::BTreeMap<String, u32> {
            paths.iter().cloned().zip(got.iter().copied()).collect()
        };
        let before = of(&paths, &before);
        let run = run_docs(paths.len(), shards);
        let boundary = paths
            .iter()
            .position(|p| p.starts_with("flat/") && hash32(p.as_bytes()).1.is_multiple_of(run))
            .unwrap();
        let mut changes: Vec<(Vec<String>, Option<&str>)> = Vec::new();
        for added in ["flat/GO-000100a.json", "eco/pkg-0007/ADV-7-00003a.json", "flat/GO-019999a.json"] {
            let mut more = paths.clone();
            more.push(added.to_string());
            more.sort();
            changes.push((more, Some(added)));
        }
        for removed in [1000, 8000, boundary] {
            let mut fewer = paths.clone();
            fewer.remove(removed);
            changes.push((fewer, None));
        }
        for (changed, added) in changes {
            {
                let after = of(&changed, &assign(&changed, shards));
                let moved: Vec<&String> = after
                    .iter()
                    .filter(|(p, s)| before.get(*p).is_some_and(|b| b != *s))
                    .map(|(p, _)| p)
                    .collect();
                let dirty: std::collections::BTreeSet<u32> = moved
                    .iter()
                    .flat_map(|p| [before[*p], after[*p]])
                    .chain(added.and_then(|a| after.get(a).copied()))
                    .collect();
                assert!(moved.len() <= 4 * 128, "{} documents moved", moved.len());
                assert!(dirty.len() <= 3, "{dirty:?}");
            }
        }
    }
}
