//! Archive sources: `.tar`, `.tar.gz`/`.tgz`, `.tar.zst`/`.tzst`.
//!
//! Members are validated before anything is kept: absolute paths, `..`
//! components, symbolic and hard links, devices and FIFOs are refused with
//! the member named. Accepted members are packed per shard into CAS blobs
//! ([`Pack`]), so steps read only their shard's bytes and never re-open the
//! archive. The archive's index (shards, packs) is remembered against its
//! stat; an unchanged archive is not read at all.
//!
//! Reading streams: a first pass lists and checks members, later passes
//! write them straight into per-shard pack files ([`PACK_ROUND`] shards per
//! pass), so memory does not grow with the archive. Members over
//! [`MAX_MEMBER`] bytes, or whose data is shorter than their header says,
//! are refused.
//!
//! Pack format (ours, internal): repeated `path_len u32 LE | path |
//! data_len u64 LE | data`, members in archive order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use super::{into_shards, shard_of, tree_digest, DocEntry, Filter, Origin, Shard, Snapshot, SourceError};
use crate::cache::stat::StatKey;
use crate::cache::Cache;
use crate::digest::{Digest, Sha256};
use crate::profile::SourceDef;

/// Largest accepted member (a single evidence document).
pub const MAX_MEMBER: u64 = 256 << 20;
/// Shards packed per pass over the archive (bounds open files).
pub const PACK_ROUND: u32 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn of(path: &Path) -> Option<Compression> {
        let name = path.file_name()?.to_str()?;
        if name.ends_with(".tar") {
            Some(Compression::None)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Compression::Gzip)
        } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
            Some(Compression::Zstd)
        } else {
            None
        }
    }
}

/// The packed bytes of one shard's members.
pub struct Pack {
    bytes: Vec<u8>,
    index: BTreeMap<String, (usize, usize)>,
}

impl Pack {
    pub fn write_member(w: &mut impl std::io::Write, path: &str, data: &[u8]) -> std::io::Result<()> {
        w.write_all(&(path.len() as u32).to_le_bytes())?;
        w.write_all(path.as_bytes())?;
        w.write_all(&(data.len() as u64).to_le_bytes())?;
        w.write_all(data)
    }

    #[cfg(test)]
    pub fn encode(members: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (p, data) in members {
            Self::write_member(&mut out, p, data).expect("writing to a Vec");
        }
        out
    }

    pub fn parse(bytes: Vec<u8>) -> Result<Pack, String> {
        let mut index = BTreeMap::new();
        let mut pos = 0usize;
        let bad = || "truncated pack".to_string();
        while pos < bytes.len() {
            let plen =
                u32::from_le_bytes(bytes.get(pos..pos + 4).ok_or_else(bad)?.try_into().unwrap()) as usize;
            pos += 4;
            let path = std::str::from_utf8(bytes.get(pos..pos + plen).ok_or_else(bad)?)
                .map_err(|e| e.to_string())?;
            pos += plen;
            let dlen =
                u64::from_le_bytes(bytes.get(pos..pos + 8).ok_or_else(bad)?.try_into().unwrap()) as usize;
            pos += 8;
            bytes.get(pos..pos + dlen).ok_or_else(bad)?;
            index.insert(path.to_string(), (pos, dlen));
            pos += dlen;
        }
        Ok(Pack { bytes, index })
    }

    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.index.get(path).map(|&(p, l)| &self.bytes[p..p + l])
    }
}

#[derive(Serialize, Deserialize)]
struct Index {
    archive_sha256: Sha256,
    tree: Sha256,
    shards: Vec<Shard>,
}

/// Check a member path; returns it normalised (no leading `./`).
pub fn check_member(raw: &Path) -> Result<String, String> {
    let text = raw.to_str().ok_or("member path is not UTF-8")?;
    if raw.is_absolute() || text.starts_with('/') {
        return Err("absolute member path refused".into());
    }
    let mut parts = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().ok_or("member path is not UTF-8")?),
            Component::CurDir => {}
            Component::ParentDir => return Err("member path with '..' refused".into()),
            Component::RootDir | Component::Prefix(_) => return Err("absolute member path refused".into()),
        }
    }
    if parts.is_empty() {
        return Err("empty member path".into());
    }
    Ok(parts.join("/"))
}

pub fn snapshot(def: &SourceDef, cache: &Cache) -> Result<Snapshot, SourceError> {
    let archive_name = def.path.display().to_string();
    let io_err = |err: std::io::Error| SourceError::Io {
        source_name: def.name.clone(),
        path: archive_name.clone(),
        err,
    };
    let scope = format!("archive\0{}\0{}", def.name, archive_name);
    let taken_ns = crate::cache::stat::now_ns();
    let md = std::fs::metadata(&def.path).map_err(io_err)?;
    let key = StatKey::of(&md);
    let table = cache.load_stats(&scope);
    let idx_path = cache.root().join("stat").join(format!("{}.idx", Digest::of(scope.as_bytes()).hex()));
    // Filters are part of the index's identity: a changed include list re-reads.
    let filter_id = format!("{:?}|{:?}|{:?}", def.include, def.exclude, def.shards);
    if let Some(sha) = table.cursor().seek(&filter_id, &key) {
        if let Some(idx) =
            std::fs::read(&idx_path).ok().and_then(|b| serde_json::from_slice::<Index>(&b).ok())
        {
            let packs_present =
                idx.shards.iter().all(|s| s.pack.is_some_and(|p| cache.blob_path(&p).is_file()));
            if idx.archive_sha256 == sha && packs_present {
                return Ok(finish(def, idx.tree, idx.shards, 0));
            }
        }
    }
    // Pass 1: list and check members (data is skipped, never buffered).
    let (listing, archive_sha256) = scan(def, &mut |_, _| Ok(()))?;
    let count = def.shards.unwrap_or_else(|| crate::profile::auto_shards(listing.len()));
    // Passes 2..: stream members into per-shard pack files, PACK_ROUND shards
    // per pass so the open files stay few whatever the shard count.
    let mut docs: Vec<DocEntry> = Vec::with_capacity(listing.len());
    let mut packs: BTreeMap<u32, Digest> = BTreeMap::new();
    let tmp = cache.tmp_dir();
    let mut first = 0u32;
    while first < count && !listing.is_empty() {
        let last = (first + PACK_ROUND).min(count);
        let mut files: BTreeMap<u32, std::io::BufWriter<tempfile::NamedTempFile>> = BTreeMap::new();
        let (_, again) = scan(def, &mut |path, data| {
            let shard = shard_of(path, count);
            if shard < first || shard >= last {
                return Ok(());
            }
            docs.push(DocEntry { path: path.to_string(), sha256: Sha256::of(data), size: data.len() as u64 });
            let w = match files.entry(shard) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let f = tempfile::NamedTempFile::new_in(&tmp)?;
                    v.insert(std::io::BufWriter::new(f))
                }
            };
            Pack::write_member(w, path, data)
        })?;
        if again != archive_sha256 {
            return Err(SourceError::Changed { source_name: def.name.clone(), path: archive_name.clone() });
        }
        for (shard, w) in files {
            let f = w.into_inner().map_err(|e| io_err(e.into_error()))?;
            let (digest, _) = cache.put_file(f.path())?;
            packs.insert(shard, digest);
        }
        first = last;
    }
    docs.sort_by(|a, b| a.path.cmp(&b.path));
    let tree = tree_digest(cache, &scope, &docs);
    let mut shards = into_shards(docs, count);
    for shard in &mut shards {
        shard.pack = packs.get(&shard.index).copied();
    }
    let idx = Index { archive_sha256, tree, shards };
    cache.write_atomic(&idx_path, &serde_json::to_vec(&idx).expect("serialisable"))?;
    cache.save_stats(&scope, taken_ns, std::iter::once((filter_id.as_str(), key, archive_sha256)))?;
    Ok(finish(def, idx.tree, idx.shards, 1))
}

fn finish(def: &SourceDef, tree: Sha256, shards: Vec<Shard>, files_read: usize) -> Snapshot {
    Snapshot {
        def: def.clone(),
        origin: Origin::Archive,
        tree,
        documents: shards.iter().map(|s| s.docs.len()).sum(),
        shards,
        files_read,
    }
}

struct HashingReader<R> {
    inner: R,
    sha: sha2::Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

/// One pass over the archive: checks every member, calls `each` with the
/// path and bytes of every accepted member (one member's bytes in memory at
/// a time), and returns the accepted paths and the archive's SHA-256.
fn scan(
    def: &SourceDef,
    each: &mut dyn FnMut(&str, &[u8]) -> std::io::Result<()>,
) -> Result<(Vec<String>, Sha256), SourceError> {
    let archive_name = def.path.display().to_string();
    let io_err = |err: std::io::Error| SourceError::Io {
        source_name: def.name.clone(),
        path: archive_name.clone(),
        err,
    };
    let file = File::open(&def.path).map_err(io_err)?;
    let mut hashing =
        HashingReader { inner: BufReader::with_capacity(1 << 20, file), sha: Default::default() };
    let comp = Compression::of(&def.path).expect("checked by caller");
    let mut listing = Vec::new();
    {
        let reader: Box<dyn Read + '_> = match comp {
            Compression::None => Box::new(&mut hashing),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut hashing)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(&mut hashing).map_err(io_err)?),
        };
        let filter = Filter::new(def);
        let mut ar = tar::Archive::new(reader);
        let io_at = |member: &str, err: std::io::Error| SourceError::Io {
            source_name: def.name.clone(),
            path: format!("{archive_name}: member {member}"),
            err,
        };
        let entries = ar.entries().map_err(|e| io_at("(header)", e))?;
        let mut seen = std::collections::HashSet::new();
        let mut data = Vec::new();
        for entry in entries {
            let mut entry = entry.map_err(|e| io_at("(next header)", e))?;
            let raw_path = entry.path().map_err(|e| io_at("(path)", e))?.into_owned();
            let shown = raw_path.display().to_string();
            let refuse = |reason: String| SourceError::Refused {
                source_name: def.name.clone(),
                path: format!("{archive_name}: member {shown}"),
                reason,
            };
            let path = check_member(&raw_path).map_err(&refuse)?;
            use tar::EntryType as E;
            match entry.header().entry_type() {
                E::Directory => continue,
                E::Regular | E::Continuous => {}
                E::Symlink | E::Link => return Err(refuse("link members are refused".into())),
                E::Char | E::Block | E::Fifo => {
                    return Err(refuse("device and FIFO members are refused".into()))
                }
                E::XGlobalHeader | E::XHeader | E::GNULongName | E::GNULongLink => continue,
                other => return Err(refuse(format!("unsupported member type {other:?}"))),
            }
            if !filter.accepts(&path) {
                continue;
            }
            if entry.size() > MAX_MEMBER {
                return Err(refuse(format!(
                    "member of {} bytes is over the {MAX_MEMBER}-byte limit",
                    entry.size()
                )));
            }
            if !seen.insert(path.clone()) {
                return Err(refuse("the same member path appears twice".into()));
            }
            data.clear();
            (&mut entry).take(MAX_MEMBER + 1).read_to_end(&mut data).map_err(|e| io_at(&shown, e))?;
            if data.len() as u64 != entry.size() {
                return Err(refuse(format!(
                    "member holds {} bytes, its header says {}",
                    data.len(),
                    entry.size()
                )));
            }
            each(&path, &data).map_err(|e| io_at(&shown, e))?;
            listing.push(path);
        }
    }
    // drain any trailing bytes so the digest covers the whole file
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(io_err)?;
    use sha2::Digest as _;
    Ok((listing, Sha256(hashing.sha.finalize().into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_are_checked() {
        assert_eq!(check_member(Path::new("./a/b.json")).unwrap(), "a/b.json");
        assert!(check_member(Path::new("../x.json")).unwrap_err().contains(".."));
        assert!(check_member(Path::new("a/../../x.json")).is_err());
        assert!(check_member(Path::new("/etc/x.json")).unwrap_err().contains("absolute"));
    }

    #[test]
    fn pack_roundtrip() {
        let p = Pack::parse(Pack::encode(&[("a".into(), b"1".to_vec()), ("b/c".into(), b"22".to_vec())]))
            .unwrap();
        assert_eq!(p.get("b/c"), Some(&b"22"[..]));
        assert_eq!(p.get("z"), None);
        assert!(Pack::parse(vec![9, 0, 0, 0, b'a']).is_err());
    }
}
