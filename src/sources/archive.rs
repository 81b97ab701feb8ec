//! Archive sources: `.tar`, `.tar.gz`/`.tgz`, `.tar.zst`/`.tzst`.
//!
//! Members are validated before anything is kept: absolute paths, `..`
//! components, symbolic and hard links, devices, FIFOs and GNU sparse
//! members are refused with the member named; folder entries (`./`
//! included) are skipped before their path is checked. Accepted members are packed per shard into CAS blobs
//! ([`Pack`]), so steps read only their shard's bytes and never re-open the
//! archive. The archive's index (shards, packs) is remembered against its
//! stat; an unchanged archive is not read at all.
//!
//! Reading streams: a first pass lists and checks members, later passes
//! write them straight into per-shard pack files ([`PACK_ROUND`] shards per
//! pass), so memory does not grow with the archive. Members over the
//! source's `max-document-bytes`, members whose data is shorter than their
//! header says, and archives expanding past `max-archive-bytes` are
//! refused; so are tar metadata runs (pax / long-name headers, which the
//! tar reader buffers) over [`MAX_META`] bytes.
//!
//! A damaged archive (truncated, garbage, wrong compression, a bad header)
//! is invalid input, not a transient failure: it is refused naming the
//! archive, the member (or the last good one) and the problem, never with
//! raw archive bytes. Only a failing read of the file itself is an I/O error.
//!
//! Pack format (ours, internal): repeated `path_len u32 LE | path |
//! data_len u64 LE | data`, members in archive order.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::{assign, into_shards, tree_digest, DocEntry, Filter, Origin, Shard, Snapshot, SourceError};
use crate::cache::memo::{Area, Memo};
use crate::cache::stat::StatKey;
use crate::cache::Cache;
use crate::digest::{Digest, Sha256};
use crate::profile::SourceDef;
use crate::shown;

/// Largest run of tar metadata (headers, pax records, long names) read
/// between two members.
pub const MAX_META: u64 = 8 << 20;
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

/// One shard's pack, read in place: the index of its members is built by
/// seeking over their data, and a member is read with `pread`.
pub struct Pack {
    file: File,
    index: BTreeMap<String, (u64, u64)>,
}

impl Pack {
    pub fn write_member(w: &mut impl std::io::Write, path: &str, data: &[u8]) -> std::io::Result<()> {
        w.write_all(&(path.len() as u32).to_le_bytes())?;
        w.write_all(path.as_bytes())?;
        w.write_all(&(data.len() as u64).to_le_bytes())?;
        w.write_all(data)
    }

    pub fn open(file: File) -> Result<Pack, String> {
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        std::io::Seek::rewind(&mut &file).map_err(|e| e.to_string())?;
        let mut r = BufReader::with_capacity(1 << 16, &file);
        let mut index = BTreeMap::new();
        let mut pos = 0u64;
        let bad = |_| "truncated pack".to_string();
        while pos < len {
            let mut n4 = [0u8; 4];
            r.read_exact(&mut n4).map_err(bad)?;
            let plen = u32::from_le_bytes(n4) as u64;
            if plen > 1 << 16 {
                return Err("corrupt pack (member path too long)".into());
            }
            let mut path = vec![0u8; plen as usize];
            r.read_exact(&mut path).map_err(bad)?;
            let path = String::from_utf8(path).map_err(|_| "corrupt pack (path not UTF-8)".to_string())?;
            let mut n8 = [0u8; 8];
            r.read_exact(&mut n8).map_err(bad)?;
            let dlen = u64::from_le_bytes(n8);
            pos += 4 + plen + 8;
            if dlen > len - pos {
                return Err("truncated pack".into());
            }
            r.seek_relative(dlen as i64).map_err(|e| e.to_string())?;
            index.insert(path, (pos, dlen));
            pos += dlen;
        }
        drop(r);
        Ok(Pack { file, index })
    }

    /// Where member `path`'s bytes lie in the pack: (offset, length).
    pub fn locate(&self, path: &str) -> Option<(u64, u64)> {
        self.index.get(path).copied()
    }

    /// Fill `buf` from the pack at `offset` (a range [`Pack::locate`] gave).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }

    /// The bytes of member `path`, `None` if the pack has no such member.
    pub fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        use std::os::unix::fs::FileExt;
        let Some(&(pos, len)) = self.index.get(path) else { return Ok(None) };
        let mut buf = vec![0u8; len as usize];
        self.file.read_exact_at(&mut buf, pos)?;
        Ok(Some(buf))
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
    let archive_name = shown::path(&def.path);
    let io_err = |err: std::io::Error| SourceError::Io {
        source_name: def.name.clone(),
        path: archive_name.clone(),
        err,
    };
    let scope = format!("archive\0{}\0{}", def.name, def.path.display());
    let taken_ns = crate::cache::stat::now_ns();
    let md = std::fs::metadata(&def.path).map_err(io_err)?;
    if !md.is_file() {
        return Err(SourceError::Refused {
            source_name: def.name.clone(),
            path: archive_name,
            reason: "not a regular file".into(),
        });
    }
    let key = StatKey::of(&md);
    let table = cache.load_stats(&scope);
    // the index is a memo naming its packs: `cache gc` keeps them together
    let idx_key = format!("archive-index\0{scope}");
    // Filters and limits are part of the index's identity: a change re-reads.
    let filter_id =
        format!("{}|{:?}|{:?}|{:?}|{:?}", super::SHARDING, def.include, def.exclude, def.shards, def.limits);
    if let Some(sha) = table.cursor().seek(&filter_id, &key) {
        if let Some(idx) = cache
            .load_memo(Area::Stat, idx_key.as_bytes())
            .and_then(|m| serde_json::from_slice::<Index>(&m.data).ok())
        {
            let packs_present = idx.shards.iter().all(|s| s.pack.is_some_and(|p| cache.contains_blob(&p)));
            if idx.archive_sha256 == sha && packs_present {
                return Ok(finish(def, idx.tree, idx.shards, 0));
            }
        }
    }
    // Pass 1: list and check members (data is skipped, never buffered).
    let (listing, archive_sha256) = scan(def, &mut |_, _| Ok(()))?;
    let count = def.shards.unwrap_or_else(|| crate::profile::auto_shards(listing.len()));
    // each member's shard, looked up by path while the members stream past
    let mut sorted: Vec<&str> = listing.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let shard_of_member = assign(&sorted, count);
    let shard_of = |path: &str| sorted.binary_search(&path).ok().map(|i| shard_of_member[i]);
    // Passes 2..: stream members into per-shard pack files, PACK_ROUND shards
    // per pass so the open files stay few whatever the shard count.
    let mut docs: Vec<DocEntry> = Vec::with_capacity(listing.len());
    let mut packs: BTreeMap<u32, Digest> = BTreeMap::new();
    let mut first = 0u32;
    while first < count && !listing.is_empty() {
        let last = (first + PACK_ROUND).min(count);
        let mut files: BTreeMap<u32, std::io::BufWriter<tempfile::NamedTempFile>> = BTreeMap::new();
        let (_, again) = scan(def, &mut |path, data| {
            // a member the first pass did not list: the archive changed, which
            // the digest check after this pass reports
            let Some(shard) = shard_of(path) else {
                return Ok(());
            };
            if shard < first || shard >= last {
                return Ok(());
            }
            docs.push(DocEntry { path: path.to_string(), sha256: Sha256::of(data), size: data.len() as u64 });
            let w = match files.entry(shard) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let f = cache.temp_file().map_err(std::io::Error::other)?;
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
    let memo = Memo {
        blobs: idx.shards.iter().filter_map(|s| s.pack).collect(),
        data: serde_json::to_vec(&idx).expect("serialisable"),
    };
    cache.save_memo(Area::Stat, idx_key.as_bytes(), &memo)?;
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

/// Which layer of the reader stack failed first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// Reading the archive file itself: an I/O error.
    File,
    /// The decompressor: the data is not what the file name says.
    Decode,
    /// The tar reader read more metadata than [`MAX_META`].
    Meta,
}

/// The file at the bottom of the stack: hashes what it reads, tags errors.
struct HashingReader<R> {
    inner: R,
    sha: sha2::Sha256,
    failed: Rc<Cell<Option<Layer>>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.read(buf).inspect_err(|_| self.failed.set(Some(Layer::File)))?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

/// Between the decompressor and the tar reader: tags decompression errors
/// (unless the file failed first) and meters what the tar reader reads
/// against `allowance` (renewed for each member by [`scan`]).
struct Meter<R> {
    inner: R,
    failed: Rc<Cell<Option<Layer>>>,
    allowance: Rc<Cell<u64>>,
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.allowance.get();
        if left == 0 {
            self.failed.set(Some(Layer::Meta));
            return Err(std::io::Error::other("tar metadata over the limit"));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want]).inspect_err(|_| {
            if self.failed.get().is_none() {
                self.failed.set(Some(Layer::Decode));
            }
        })?;
        self.allowance.set(left - n as u64);
        Ok(n)
    }
}

/// What a tar-level error means, in words of ours (the tar reader's own
/// messages can quote raw header bytes).
fn tar_problem(e: &std::io::Error) -> &'static str {
    let msg = e.to_string();
    let cut = ["entire block", "during skip", "failed to read extension", "no future member"];
    if e.kind() == std::io::ErrorKind::UnexpectedEof || cut.iter().any(|c| msg.contains(c)) {
        "the archive is truncated"
    } else if msg.contains("checksum") {
        "corrupt tar header (checksum mismatch)"
    } else if msg.contains("numeric field") || msg.contains("size overflow") {
        "corrupt tar header (malformed numeric field)"
    } else if msg.contains("sparse") {
        "malformed GNU sparse member"
    } else if msg.contains("pax") {
        "malformed pax extended header"
    } else {
        "corrupt tar data"
    }
}

/// One pass over the archive: checks every member, calls `each` with the
/// path and bytes of every accepted member (one member's bytes in memory at
/// a time), and returns the accepted paths and the archive's SHA-256.
fn scan(
    def: &SourceDef,
    each: &mut dyn FnMut(&str, &[u8]) -> std::io::Result<()>,
) -> Result<(Vec<String>, Sha256), SourceError> {
    let archive_name = shown::path(&def.path);
    let io_err = |err: std::io::Error| SourceError::Io {
        source_name: def.name.clone(),
        path: archive_name.clone(),
        err,
    };
    let refuse_at = |member: &str, reason: String| SourceError::Refused {
        source_name: def.name.clone(),
        path: format!("{archive_name}: {member}"),
        reason,
    };
    let (file, _) = match super::open_regular(&def.path, true).map_err(io_err)? {
        Ok(x) => x,
        Err(reason) => {
            return Err(SourceError::Refused {
                source_name: def.name.clone(),
                path: archive_name.clone(),
                reason: reason.into(),
            })
        }
    };
    let failed: Rc<Cell<Option<Layer>>> = Rc::new(Cell::new(None));
    let allowance = Rc::new(Cell::new(MAX_META));
    let mut hashing = HashingReader {
        inner: BufReader::with_capacity(1 << 20, file),
        sha: Default::default(),
        failed: failed.clone(),
    };
    let comp = Compression::of(&def.path).expect("checked by caller");
    let comp_name = match comp {
        Compression::None => "tar",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    };
    let max_doc = def.limits.max_document_bytes;
    let max_expanded = def.limits.max_archive_bytes;
    let mut listing = Vec::new();
    {
        // Classify a read error: the file (I/O, exit 1), the decompressor or
        // the tar data (invalid input, exit 2, named without raw bytes).
        let classify = |member: &str, e: std::io::Error| match failed.get() {
            Some(Layer::File) => io_err(e),
            Some(Layer::Decode) => refuse_at(
                member,
                format!(
                    "not valid {comp_name} data ({}); the archive is damaged or not {comp_name}",
                    shown::name(&e.to_string())
                ),
            ),
            Some(Layer::Meta) => refuse_at(member, format!("tar metadata headers over {MAX_META} bytes")),
            None => refuse_at(member, tar_problem(&e).into()),
        };
        let decoded: Box<dyn Read + '_> = match comp {
            Compression::None => Box::new(&mut hashing),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut hashing)),
            Compression::Zstd => match zstd::stream::read::Decoder::new(&mut hashing) {
                Ok(d) => Box::new(d),
                Err(e) => return Err(classify("(start)", e)),
            },
        };
        let metered = Meter { inner: decoded, failed: failed.clone(), allowance: allowance.clone() };
        let filter = Filter::new(def);
        let mut ar = tar::Archive::new(metered);
        let mut last = String::from("(first header)");
        let entries = ar.entries().map_err(|e| classify(&last, e))?;
        let mut seen = std::collections::HashSet::new();
        let mut data = Vec::new();
        let mut expanded = 0u64;
        for entry in entries {
            let mut entry = entry.map_err(|e| classify(&last, e))?;
            let size = entry.size();
            allowance.set(MAX_META.saturating_add(size).saturating_add(1024));
            let raw_path = entry.path().map_err(|e| classify(&last, e))?.into_owned();
            let member = format!("member {}", shown::path(&raw_path));
            last = format!("member after {}", shown::path(&raw_path));
            let refuse = |reason: String| refuse_at(&member, reason);
            expanded = expanded.saturating_add(512 + size.div_ceil(512) * 512);
            if expanded > max_expanded {
                return Err(refuse(format!(
                    "the archive expands to more than {max_expanded} bytes (max-archive-bytes)"
                )));
            }
            use tar::EntryType as E;
            match entry.header().entry_type() {
                E::Directory => continue,
                E::Regular | E::Continuous => {}
                E::Symlink | E::Link => return Err(refuse("link members are refused".into())),
                E::Char | E::Block | E::Fifo => {
                    return Err(refuse("device and FIFO members are refused".into()))
                }
                E::GNUSparse => return Err(refuse("GNU sparse members are refused".into())),
                E::XGlobalHeader | E::XHeader | E::GNULongName | E::GNULongLink => continue,
                other => {
                    return Err(refuse(format!("unsupported member type {:?}", other.as_byte() as char)))
                }
            }
            let path = check_member(&raw_path).map_err(&refuse)?;
            if !filter.accepts(&path) {
                continue;
            }
            if size > max_doc {
                return Err(refuse(format!(
                    "document of {size} bytes is over the {max_doc}-byte limit (max-document-bytes)"
                )));
            }
            if !seen.insert(path.clone()) {
                return Err(refuse("the same member path appears twice".into()));
            }
            data.clear();
            (&mut entry).take(max_doc + 1).read_to_end(&mut data).map_err(|e| classify(&member, e))?;
            if data.len() as u64 != size {
                return Err(refuse(format!("member holds {} bytes, its header says {size}", data.len())));
            }
            each(&path, &data).map_err(|e| SourceError::Io {
                source_name: def.name.clone(),
                path: format!("{archive_name}: {member}"),
                err: e,
            })?;
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

    fn pack_of(bytes: &[u8]) -> Result<Pack, String> {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        Pack::open(f)
    }

    #[test]
    fn pack_roundtrip() {
        let mut bytes = Vec::new();
        Pack::write_member(&mut bytes, "a", b"1").unwrap();
        Pack::write_member(&mut bytes, "b/c", b"22").unwrap();
        let p = pack_of(&bytes).unwrap();
        assert_eq!(p.read("b/c").unwrap().as_deref(), Some(&b"22"[..]));
        assert_eq!(p.read("z").unwrap(), None);
        assert!(pack_of(&[9, 0, 0, 0, b'a']).is_err());
        assert!(pack_of(&[1, 0, 0, 0, b'a', 9, 0, 0, 0, 0, 0, 0, 0, b'x']).is_err());
    }
}
