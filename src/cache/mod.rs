//! The hermetic cache under `cache/`: content-addressed blobs, the action
//! cache, and the local-only areas (stat cache, memos, step records, run
//! records, temp files).
//!
//! [`Cache`] is the one door: callers ask for intents (store a finished
//! file, read a blob verified, look a key up, a scratch folder, a memo)
//! and never see a path inside the cache. Two traits split it:
//!
//! - [`BlobStore`] (content-addressed blobs) and [`ActionCache`] (step key →
//!   output digests) are what may be *shared*; [`FsStore`] is the
//!   filesystem implementation (`cas/`, `ac/`).
//! - everything else is *local* to this machine and stays in the cache
//!   folder whatever store is used: `tmp/`, `scratch/`, `stat/` (it
//!   describes this machine's files), `gzip/` memos, `steps/` records,
//!   `runs/`.
//!
//! **A remote store next.** The Bazel HTTP cache protocol (`GET`/`PUT`
//! `/cas/<hash>`, `/ac/<hash>`, 404 for a miss) maps onto the two traits one
//! for one: `BlobStore::contains` is a `HEAD /cas/<hash>`, `put_bytes` and
//! `put_file` a `PUT /cas/<hash>` (the digest is BLAKE3: the server must not
//! check it as SHA-256), `reader` streams the body of `GET /cas/<hash>`
//! through the same verifying [`BlobReader`], `open_file` spills a `GET`
//! into `tmp/` for callers that seek (archive packs); `ActionCache::get_entry`
//! and `put_entry` are `GET`/`PUT /ac/<key>` with the entry's JSON as the
//! opaque body. A remote store is a second implementation of the traits
//! placed behind [`Cache`] (usually read-through: the local [`FsStore`] first,
//! then the remote, copying hits down), so no caller changes. Last-use
//! stamps and `cache gc` stay with the local store: an HTTP cache server
//! evicts by its own policy and the protocol has no listing.
//!
//! Layout (all paths relative to the cache folder):
//!
//! | path                  | what                                                      |
//! |-----------------------|-----------------------------------------------------------|
//! | `lock`                | shared-locked by builds, exclusively by `cache gc`         |
//! | `tmp/`                | temp files; renamed into place once complete and synced   |
//! | `cas/ab/<b3>`         | blob named by the BLAKE3 of its bytes                     |
//! | `ac/ab/<key>`         | action-cache entry: step key → output digests (JSON)      |
//! | `stat/<b3(scope)>.bin`| stat cache of one source (see [`stat`])                  |
//! | `stat/ab/<b3>`        | memo of a source (tree digest, archive index + its packs) |
//! | `gzip/ab/<b3>`        | memo naming the CAS blob of a cached gzip piece (DB archives) |
//! | `steps/<b3(id)>.json` | the key inputs of a step's last execution (for reasons)   |
//! | `runs/`               | run records (local; written by `ops::runlog`)             |
//! | `scratch/<name>.<n>`  | big scratch files kept for reuse, never read as input ([`scratch`]) |
//!
//! **Last use.** A file's mtime in `ac/`, `gzip/`, `stat/` is its last use:
//! written on commit and moved forward on a hit, at most once per run (only
//! when older than the moment the cache was opened), so `cache gc` ([`gc`])
//! evicts what builds stopped using, not what was built first. A blob
//! lives as long as some kept entry or memo names it.
//!
//! Invariants: every file is written to `tmp/` and renamed into place, so
//! a reader sees a whole file or none, whatever kills the process.
//!
//! Durability (power loss, kernel crash) is batched, as git's
//! `core.fsyncMethod=batch` does: files are not fsynced one by one (at
//! thousands of steps that costs more than the work); one `syncfs` at the
//! end of the run, before anything is published, flushes them all. If
//! power fails before it, a blob or entry may come back torn; blobs are
//! re-hashed on use and entries parsed and key-checked, so a torn file is
//! a cache miss, never served. `EXPORT_CENTER_FSYNC=always` fsyncs every
//! file before its rename instead. An action-cache entry is written only
//! after every blob it names is in the CAS. A blob is re-hashed whenever
//! its bytes are used; a mismatch deletes it and reports
//! [`CacheError::Corrupt`], and the driver rebuilds its producer. Two
//! processes may share one cache: blob and entry names are content-derived,
//! so concurrent writers race only to write identical bytes.

pub mod action;
pub mod cas;
pub mod gc;
pub mod hashing;
pub mod memo;
pub mod scratch;
pub mod stat;
pub mod store;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use cas::FsStore;
pub use hashing::{Hashed, HashingFile};
pub use store::{ActionCache, BlobStore, Store};

use crate::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cache blob {path} does not match its digest {digest}: deleted, its producer will be rebuilt")]
    Corrupt { path: PathBuf, digest: Digest },
    #[error("cache blob {digest} is missing")]
    Missing { digest: Digest },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io { path: path.to_path_buf(), source }
}

/// The local folder: temp files, atomic writes, last-use stamps. Shared by
/// the filesystem store and the local-only areas.
#[derive(Clone)]
pub(crate) struct Files {
    pub(crate) root: PathBuf,
    fsync_each: bool,
    /// When this process opened the cache: a stamp older than this is moved
    /// forward on use, so each file is touched at most once per run.
    opened: SystemTime,
}

impl Files {
    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Write `bytes` to `dest` atomically: temp file in `tmp/`, rename
    /// (fsync first with `EXPORT_CENTER_FSYNC=always`).
    pub(crate) fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), CacheError> {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let tmp_dir = self.tmp();
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io(&tmp_dir))?;
        tmp.write_all(bytes).map_err(io(tmp.path()))?;
        if self.fsync_each {
            tmp.as_file().sync_all().map_err(io(dest))?;
        }
        tmp.persist(dest).map_err(|e| CacheError::Io { path: dest.to_path_buf(), source: e.error })?;
        crate::crashpoint::hit("after-atomic-write");
        Ok(())
    }

    /// Record a use of the open file `f`: move its mtime to now unless it
    /// is already newer than this run's start. Best effort (a read-only
    /// cache still works; it only ages).
    pub(crate) fn mark_used(&self, f: &File) {
        let older = f.metadata().and_then(|m| m.modified()).map(|t| t < self.opened).unwrap_or(false);
        if older {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// Read a local file whole and record the use; `None` if absent or unreadable.
    pub(crate) fn read_used(&self, path: &Path) -> Option<Vec<u8>> {
        use std::io::Read;
        let mut f = File::open(path).ok()?;
        let mut b = Vec::new();
        f.read_to_end(&mut b).ok()?;
        self.mark_used(&f);
        Some(b)
    }
}

/// An open cache folder.
pub struct Cache {
    store: Box<dyn Store>,
    files: Files,
    _lock: File,
    /// Blobs this process stored, named from the bytes it hashed itself:
    /// linking them into an export needs no read-through check.
    fresh: std::sync::Mutex<std::collections::HashSet<Digest>>,
}

/// `EXPORT_CENTER_FSYNC=always`, as the CLI read it: fsync every file
/// before its rename instead of one `syncfs` per run.
static FSYNC_EACH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set once at the CLI edge (the library reads no environment variable).
pub fn set_fsync_each(on: bool) {
    FSYNC_EACH.store(on, std::sync::atomic::Ordering::Relaxed);
}

impl Cache {
    /// Open (creating if needed) and take the shared build lock.
    pub fn open(root: &Path) -> Result<Self, CacheError> {
        Self::open_with(root, false)
    }

    /// Open with the exclusive lock (garbage collection).
    pub fn open_exclusive(root: &Path) -> Result<Self, CacheError> {
        Self::open_with(root, true)
    }

    fn open_with(root: &Path, exclusive: bool) -> Result<Self, CacheError> {
        for sub in ["tmp", "cas", "ac", "stat", "steps", "runs"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io(&p))?;
        }
        let lock_path = root.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        if exclusive { lock.lock() } else { lock.lock_shared() }.map_err(io(&lock_path))?;
        let fsync_each = FSYNC_EACH.load(std::sync::atomic::Ordering::Relaxed);
        let files = Files { root: root.to_path_buf(), fsync_each, opened: SystemTime::now() };
        Ok(Cache {
            store: Box::new(FsStore::new(files.clone())),
            files,
            _lock: lock,
            fresh: Default::default(),
        })
    }

    /// The shared part: blobs and action-cache entries.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// A fresh scratch folder on the cache's file system (removed when
    /// dropped); files finished in it move into the store with [`Cache::put_file`].
    pub fn scratch(&self) -> Result<tempfile::TempDir, CacheError> {
        let tmp = self.files.tmp();
        tempfile::Builder::new().prefix("step-").tempdir_in(&tmp).map_err(io(&tmp))
    }

    /// A fresh temp file on the cache's file system (removed when dropped
    /// unless moved into the store with [`Cache::put_file`]).
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile, CacheError> {
        let tmp = self.files.tmp();
        tempfile::NamedTempFile::new_in(&tmp).map_err(io(&tmp))
    }

    /// The local folder of run records (never in a shared store); files
    /// in it are written with [`Cache::write_atomic`].
    pub fn runs_dir(&self) -> PathBuf {
        self.files.root.join("runs")
    }

    /// Write `bytes` to `dest` (a file of a local area such as
    /// [`Cache::runs_dir`]) atomically.
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), CacheError> {
        self.files.write_atomic(dest, bytes)
    }

    /// Flush everything written to the cache's file system (one `syncfs`).
    pub fn sync(&self) -> Result<(), CacheError> {
        use std::os::fd::AsRawFd;
        let root = &self.files.root;
        let dir = File::open(root).map_err(io(root))?;
        // SAFETY: a valid open descriptor; syncfs only flushes.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            let source = std::io::Error::last_os_error();
            return Err(CacheError::Io { path: root.clone(), source });
        }
        Ok(())
    }

    // ---- blobs (through the store)

    /// Is the blob present with the expected size? (Cheap: one stat.)
    pub fn has_blob(&self, d: &Digest, size: u64) -> bool {
        self.store.contains(d, Some(size))
    }

    /// Is the blob present at all?
    pub fn contains_blob(&self, d: &Digest) -> bool {
        self.store.contains(d, None)
    }

    /// Store bytes; returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, CacheError> {
        let d = self.store.put_bytes(bytes)?;
        self.mark_fresh(d);
        Ok(d)
    }

    fn mark_fresh(&self, d: Digest) {
        self.fresh.lock().unwrap_or_else(|p| p.into_inner()).insert(d);
    }

    /// Whether this process stored the blob itself (see `fresh`).
    fn is_fresh(&self, d: &Digest) -> bool {
        self.fresh.lock().unwrap_or_else(|p| p.into_inner()).contains(d)
    }

    /// Move a finished file (in [`Cache::scratch`] or a [`Cache::temp_file`])
    /// into the store, hashing it on the way. Returns the digest and size.
    pub fn put_file(&self, file: &Path) -> Result<(Digest, u64), CacheError> {
        let (d, n) = self.store.put_file(file)?;
        self.mark_fresh(d);
        Ok((d, n))
    }

    /// Move a file written with a [`HashingFile`] into the store under
    /// the BLAKE3 computed as it was written (not read again); its size on
    /// disk must still be the size written.
    pub fn put_hashed(&self, h: &Hashed) -> Result<(Digest, u64), CacheError> {
        let len = fs::metadata(h.path()).map_err(io(h.path()))?.len();
        if len != h.size() {
            return Err(CacheError::Io {
                path: h.path().to_path_buf(),
                source: std::io::Error::other(format!("{len} bytes on disk, {} written", h.size())),
            });
        }
        let Some(d) = h.blake3() else { return self.put_file(h.path()) };
        self.store.put_hashed(h.path(), &d)?;
        self.mark_fresh(d);
        Ok((d, h.size()))
    }

    /// A streaming reader that verifies the blob as it goes (see [`cas::BlobReader`]).
    pub fn reader(&self, d: &Digest) -> Result<cas::BlobReader, CacheError> {
        self.store.reader(d)
    }

    /// A seekable file holding the blob's bytes, *not* verified: callers
    /// check what they read against digests they hold.
    pub fn open_blob(&self, d: &Digest) -> Result<File, CacheError> {
        self.store.open_file(d)
    }

    /// Read a blob whole, verifying it. A mismatch deletes the blob.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, CacheError> {
        let mut out = Vec::new();
        self.copy_to(d, &mut out)?;
        Ok(out)
    }

    /// Hard-link the blob to `dst` after reading it through (verified;
    /// a blob this process stored itself is linked without reading it):
    /// `Ok(false)` when the store has no linkable file or the link cannot
    /// be made (another file system), so the caller copies instead.
    pub fn link_to(&self, d: &Digest, dst: &Path) -> Result<bool, CacheError> {
        let Some(src) = self.store.linkable_path(d) else { return Ok(false) };
        if self.is_fresh(d) {
            return Ok(std::fs::hard_link(&src, dst).is_ok());
        }
        let mut r = self.reader(d)?;
        let mut buf = vec![0u8; COPY_BUF];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(r.corrupt().unwrap_or(CacheError::Io { path: src, source: e })),
            }
        }
        Ok(std::fs::hard_link(&src, dst).is_ok())
    }

    /// Stream a blob into `out`, verifying it. On a mismatch the blob is
    /// deleted and the caller must discard what was written.
    pub fn copy_to(&self, d: &Digest, out: &mut dyn Write) -> Result<u64, CacheError> {
        let mut r = self.reader(d)?;
        // large reads and writes: `std::io::copy`'s 8 KiB buffer makes a
        // 100 MiB bundle cost ~25,000 write calls
        let mut buf = vec![0u8; COPY_BUF];
        let mut n = 0u64;
        loop {
            let got = match r.read(&mut buf) {
                Ok(0) => return Ok(n),
                Ok(got) => got,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(r
                        .corrupt()
                        .unwrap_or(CacheError::Io { path: r.path().to_path_buf(), source: e }))
                }
            };
            if let Err(e) = out.write_all(&buf[..got]) {
                return Err(CacheError::Io { path: r.path().to_path_buf(), source: e });
            }
            n += got as u64;
        }
    }
}

/// Buffer of [`Cache::copy_to`].
const COPY_BUF: usize = 256 * 1024;

/// Two-level fan-out path `base/ab/<hex>`.
pub(crate) fn fanout(base: &Path, hex: &str) -> PathBuf {
    base.join(&hex[..2]).join(hex)
}
