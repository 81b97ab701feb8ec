//! The filesystem store: blobs at `cas/ab/<blake3 hex>`, action-cache
//! entries at `ac/ab/<key hex>` (the entry half is in [`super::action`]),
//! and the verifying [`BlobReader`] every store hands out.
//!
//! Invariant: a blob file's bytes hash to its name, or it is deleted the
//! moment a reader notices otherwise. Blobs are immutable once renamed in.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::store::BlobStore;
use super::{fanout, io, CacheError, Files};
use crate::digest::Digest;

/// [`BlobStore`] and [`super::ActionCache`] on the local cache folder.
pub struct FsStore {
    pub(crate) files: Files,
}

impl FsStore {
    pub(crate) fn new(files: Files) -> Self {
        FsStore { files }
    }

    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        fanout(&self.files.root.join("cas"), &d.hex())
    }

    /// Move a finished file in as blob `d`; always renamed over: an
    /// existing blob of this name may be corrupt.
    fn rename_in(&self, file: &Path, d: &Digest) -> Result<(), CacheError> {
        let dest = self.blob_path(d);
        let parent = dest.parent().expect("fan-out parent");
        fs::create_dir_all(parent).map_err(io(parent))?;
        fs::rename(file, &dest).map_err(io(&dest))?;
        crate::crashpoint::hit("after-blob-rename");
        Ok(())
    }
}

impl BlobStore for FsStore {
    fn contains(&self, d: &Digest, size: Option<u64>) -> bool {
        fs::metadata(self.blob_path(d))
            .map(|m| m.is_file() && size.is_none_or(|s| m.len() == s))
            .unwrap_or(false)
    }

    /// An existing blob of that name is replaced, not trusted: it may have
    /// been corrupted in place.
    fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, CacheError> {
        let d = Digest::of(bytes);
        self.files.write_atomic(&self.blob_path(&d), bytes)?;
        Ok(d)
    }

    fn put_file(&self, file: &Path) -> Result<(Digest, u64), CacheError> {
        let mut f = fs::File::open(file).map_err(io(file))?;
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(io(file))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            size += n as u64;
        }
        let d = Digest(*h.finalize().as_bytes());
        if self.files.fsync_each {
            f.sync_all().map_err(io(file))?;
        }
        self.rename_in(file, &d)?;
        Ok((d, size))
    }

    /// Renamed in under the digest its writer computed (see [`super::HashingFile`]).
    fn put_hashed(&self, file: &Path, d: &Digest) -> Result<(), CacheError> {
        if self.files.fsync_each {
            fs::File::open(file).and_then(|f| f.sync_all()).map_err(io(file))?;
        }
        self.rename_in(file, d)
    }

    /// Blobs are only ever renamed over or removed (see `put_file`), never written in place.
    fn linkable_path(&self, d: &Digest) -> Option<PathBuf> {
        Some(self.blob_path(d))
    }

    fn reader(&self, d: &Digest) -> Result<BlobReader, CacheError> {
        let path = self.blob_path(d);
        let f = self.open_file(d)?;
        Ok(BlobReader::new(Box::new(f), *d, path))
    }

    fn open_file(&self, d: &Digest) -> Result<fs::File, CacheError> {
        let path = self.blob_path(d);
        match fs::File::open(&path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CacheError::Missing { digest: *d }),
            Err(e) => Err(CacheError::Io { path, source: e }),
        }
    }
}

/// A streaming reader of a blob that verifies it as it goes: reading past
/// the end of a blob whose digest does not match fails with `InvalidData`,
/// deletes the local copy, and [`BlobReader::corrupt`] then gives the error
/// to return. Callers must read to the end before trusting anything they
/// derived from it.
pub struct BlobReader {
    inner: Box<dyn Read + Send + Sync>,
    h: blake3::Hasher,
    want: Digest,
    /// The local file behind `inner`: named in errors, deleted when bad.
    path: PathBuf,
    bad: bool,
}

impl BlobReader {
    /// Verify `inner` against `want`; `path` is the local copy to delete on a mismatch.
    pub fn new(inner: Box<dyn Read + Send + Sync>, want: Digest, path: PathBuf) -> Self {
        BlobReader { inner, h: blake3::Hasher::new(), want, path, bad: false }
    }

    /// The error to report once a read has failed verification.
    pub fn corrupt(&self) -> Option<CacheError> {
        self.bad.then(|| CacheError::Corrupt { path: self.path.clone(), digest: self.want })
    }

    /// The local file read (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if Digest(*self.h.finalize().as_bytes()) != self.want {
                self.bad = true;
                let _ = fs::remove_file(&self.path);
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: corrupt cache blob", self.path.display()),
                ));
            }
            return Ok(0);
        }
        self.h.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Cache;
    use super::*;

    #[test]
    fn put_read_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let d = cache.put(b"hello").unwrap();
        assert_eq!(cache.read(&d).unwrap(), b"hello");
        let path = dir.path().join("cas").join(&d.hex()[..2]).join(d.hex());
        fs::write(&path, b"jello").unwrap();
        assert!(matches!(cache.read(&d), Err(CacheError::Corrupt { .. })));
        assert!(!path.exists(), "corrupt blob is deleted");
        assert!(matches!(cache.read(&d), Err(CacheError::Missing { .. })));
        assert!(!cache.contains_blob(&d));
    }

    #[test]
    fn the_store_traits_are_object_safe() {
        fn takes(_: &dyn BlobStore, _: &dyn super::super::ActionCache) {}
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        takes(cache.store(), cache.store());
    }
}
