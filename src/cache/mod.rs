//! The hermetic cache under `cache/`: content-addressed blobs, the action
//! cache, the stat cache and the per-step records that explain rebuilds.
//!
//! Layout (all paths relative to the cache folder):
//!
//! | path                  | what                                                      |
//! |-----------------------|-----------------------------------------------------------|
//! | `lock`                | shared-locked by builds, exclusively by `cache gc`         |
//! | `tmp/`                | temp files; renamed into place once complete and synced   |
//! | `cas/ab/<b3>`         | blob named by the BLAKE3 of its bytes                     |
//! | `ac/ab/<key>`         | action-cache entry: step key → output digests (JSON)      |
//! | `stat/<source>.bin`   | stat cache of one source (see [`stat`])                  |
//! | `steps/<b3(id)>.json` | the key inputs of a step's last execution (for reasons)   |
//! | `runs/last.json`      | the last run: what ran, why, what was cached              |
//! | `gzip/ab/<key>`       | names the CAS blob of a cached gzip piece (DB archives)   |
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
pub mod stat;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// An open cache folder.
pub struct Cache {
    root: PathBuf,
    _lock: File,
    fsync_each: bool,
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
        let fsync_each = std::env::var("EXPORT_CENTER_FSYNC").is_ok_and(|v| v == "always");
        Ok(Cache { root: root.to_path_buf(), _lock: lock, fsync_each })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh scratch folder under `tmp/` (removed when dropped).
    pub fn scratch(&self) -> Result<tempfile::TempDir, CacheError> {
        let tmp = self.tmp_dir();
        tempfile::Builder::new().prefix("step-").tempdir_in(&tmp).map_err(io(&tmp))
    }

    /// Write `bytes` to `dest` atomically: temp file in `tmp/`, rename
    /// (fsync first with `EXPORT_CENTER_FSYNC=always`).
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), CacheError> {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let tmp_dir = self.tmp_dir();
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io(&tmp_dir))?;
        tmp.write_all(bytes).map_err(io(tmp.path()))?;
        if self.fsync_each {
            tmp.as_file().sync_all().map_err(io(dest))?;
        }
        tmp.persist(dest).map_err(|e| CacheError::Io { path: dest.to_path_buf(), source: e.error })?;
        crate::crashpoint::hit("after-atomic-write");
        Ok(())
    }

    pub(crate) fn fsync_each(&self) -> bool {
        self.fsync_each
    }

    /// Flush everything written to the cache's file system (one `syncfs`).
    pub fn sync(&self) -> Result<(), CacheError> {
        use std::os::fd::AsRawFd;
        let dir = File::open(&self.root).map_err(io(&self.root))?;
        // SAFETY: a valid open descriptor; syncfs only flushes.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            let source = std::io::Error::last_os_error();
            return Err(CacheError::Io { path: self.root.clone(), source });
        }
        Ok(())
    }
}

/// Two-level fan-out path `base/ab/<hex>`.
pub(crate) fn fanout(base: &Path, hex: &str) -> PathBuf {
    base.join(&hex[..2]).join(hex)
}
