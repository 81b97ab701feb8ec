//! Reusable scratch files, `scratch/<name>.<slot>`: big intermediate files
//! a step rewrites whole on every run and throws away (the `trivy.db`
//! that is archived into `db.tar.gz`, hundreds of MiB at 300,000
//! advisories).
//!
//! **Why kept.** A new file gets new page-cache pages (and new blocks) on
//! every run. Rewriting a kept file in place reuses its pages instead.
//! PostgreSQL recycles WAL segments for the same reason. The difference is
//! large where the first touch of fresh memory is slow. On our benchmark
//! VM, whose hypervisor takes freed memory back, writing 303 MiB into a
//! new file took 1.8–2.3 s; rewriting a kept one took 0.04 s (BENCHMARKS.md).
//! The cost: the file's last content stays on disk until `cache gc`, and
//! the run's `syncfs` writes it out.
//!
//! **Invariants.**
//! - One holder at a time. A slot is held through an exclusive `flock` on
//!   its file, released when the [`ScratchFile`] is dropped or its process
//!   dies. Two steps, or two builds sharing the cache, never write one file.
//!   When all [`SLOTS`] are held, a fresh temp file is used instead, and it
//!   is removed on drop.
//! - Content is never trusted. The holder writes from offset 0 and ends with
//!   [`ScratchFile::set_len`], which cuts whatever an earlier, longer use
//!   left behind. Nothing reads a scratch file except its holder, so a
//!   crash mid-write leaves only bytes the next holder overwrites.
//! - Local only (never in a shared store), outside the limit of
//!   `cache-max-size`, and deleted by `cache gc` under the exclusive cache
//!   lock, when no build holds one.

use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};

use super::{io, Cache, CacheError};

/// The folder, relative to the cache root.
pub const DIR: &str = "scratch";

/// Files kept per name: enough for the steps of one name that run at once
/// in a few builds sharing the cache.
pub const SLOTS: usize = 4;

/// A scratch file held for writing: see the module doc.
#[derive(Debug)]
pub struct ScratchFile {
    file: File,
    path: PathBuf,
    /// Set when every slot was held: the file is removed on drop.
    _temp: Option<tempfile::TempPath>,
}

impl ScratchFile {
    /// Where the file is, for readers that open it by path (the holder's
    /// own later stages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, positioned at 0 when handed out. `&File` is
    /// `Write + Seek`, so it can sit under a `BufWriter`.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Ends the file at `len` bytes (what this use wrote).
    pub fn set_len(&self, len: u64) -> Result<(), CacheError> {
        self.file.set_len(len).map_err(io(&self.path))
    }
}

impl Cache {
    /// A scratch file named `name` (lowercase letters, digits and `-`),
    /// kept between runs: see [`crate::cache::scratch`].
    pub fn reusable_scratch(&self, name: &str) -> Result<ScratchFile, CacheError> {
        assert!(
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "scratch names are fixed identifiers, got {name:?}"
        );
        let dir = self.files.root.join(DIR);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        for slot in 0..SLOTS {
            let path = dir.join(format!("{name}.{slot}"));
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io(&path))?;
            match file.try_lock() {
                Ok(()) => return Ok(ScratchFile { file, path, _temp: None }),
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(source)) => return Err(CacheError::Io { path, source }),
            }
        }
        let temp =
            tempfile::Builder::new().prefix(&format!("{name}.")).tempfile_in(&dir).map_err(io(&dir))?;
        let (file, temp) = temp.into_parts();
        let path = temp.to_path_buf();
        Ok(ScratchFile { file, path, _temp: Some(temp) })
    }

    /// Bytes held in `scratch/` (reported by `cache stats`, not limited).
    pub(crate) fn scratch_bytes(&self) -> u64 {
        fs::read_dir(self.files.root.join(DIR))
            .map(|r| r.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }

    /// Deletes every scratch file (gc, under the exclusive lock).
    pub(crate) fn clear_scratch(&self) -> usize {
        let Ok(read) = fs::read_dir(self.files.root.join(DIR)) else { return 0 };
        read.filter_map(|e| e.ok()).filter(|e| fs::remove_file(e.path()).is_ok()).count()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};

    use super::*;

    fn content(p: &Path) -> Vec<u8> {
        let mut b = Vec::new();
        File::open(p).unwrap().read_to_end(&mut b).unwrap();
        b
    }

    #[test]
    fn a_slot_is_reused_and_cut_to_what_the_last_use_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let first = {
            let s = cache.reusable_scratch("db").unwrap();
            let mut f = s.file();
            f.write_all(&[7u8; 10_000]).unwrap();
            s.set_len(10_000).unwrap();
            s.path().to_path_buf()
        };
        let s = cache.reusable_scratch("db").unwrap();
        assert_eq!(s.path(), first, "a released slot is handed out again");
        let mut f = s.file();
        assert_eq!(f.stream_position().unwrap(), 0);
        f.write_all(b"short").unwrap();
        s.set_len(f.stream_position().unwrap()).unwrap();
        assert_eq!(content(s.path()), b"short", "nothing of the longer earlier use survives");
        assert_eq!(cache.scratch_bytes(), 5);
    }

    #[test]
    fn held_slots_are_never_shared_and_overflow_goes_to_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let held: Vec<ScratchFile> = (0..SLOTS + 2).map(|_| cache.reusable_scratch("db").unwrap()).collect();
        let paths: std::collections::BTreeSet<&Path> = held.iter().map(|s| s.path()).collect();
        assert_eq!(paths.len(), SLOTS + 2, "every holder has its own file");
        let extra: Vec<PathBuf> = held[SLOTS..].iter().map(|s| s.path().to_path_buf()).collect();
        drop(held);
        for p in extra {
            assert!(!p.exists(), "an overflow temp file is removed on drop: {}", p.display());
        }
        assert_eq!(fs::read_dir(dir.path().join(DIR)).unwrap().count(), SLOTS);
        assert_eq!(cache.clear_scratch(), SLOTS);
        assert_eq!(cache.scratch_bytes(), 0);
    }
}
