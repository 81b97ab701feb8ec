//! Content-addressed blob store: `cas/ab/<blake3 hex>`.
//!
//! Invariant: a blob file's bytes hash to its name, or it is deleted the
//! moment a reader notices otherwise. Blobs are immutable once renamed in.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{fanout, io, Cache, CacheError};
use crate::digest::Digest;

impl Cache {
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        fanout(&self.root.join("cas"), &d.hex())
    }

    /// Is the blob present with the expected size? (Cheap: one stat.)
    pub fn has_blob(&self, d: &Digest, size: u64) -> bool {
        fs::metadata(self.blob_path(d)).map(|m| m.is_file() && m.len() == size).unwrap_or(false)
    }

    /// Store bytes; returns their digest. An existing blob of that name is
    /// replaced, not trusted: it may have been corrupted in place.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, CacheError> {
        let d = Digest::of(bytes);
        self.write_atomic(&self.blob_path(&d), bytes)?;
        Ok(d)
    }

    /// Move a finished file into the store, hashing it on the way.
    /// Returns the digest and size.
    pub fn put_file(&self, file: &Path) -> Result<(Digest, u64), CacheError> {
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
        // always rename over: an existing blob of this name may be corrupt
        if self.fsync_each() {
            f.sync_all().map_err(io(file))?;
        }
        let dest = self.blob_path(&d);
        let parent = dest.parent().expect("fan-out parent");
        fs::create_dir_all(parent).map_err(io(parent))?;
        fs::rename(file, &dest).map_err(io(&dest))?;
        crate::crashpoint::hit("after-blob-rename");
        Ok((d, size))
    }

    /// Read a blob whole, verifying it. A mismatch deletes the blob.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, CacheError> {
        let path = self.blob_path(d);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CacheError::Missing { digest: *d })
            }
            Err(e) => return Err(CacheError::Io { path, source: e }),
        };
        if Digest::of(&bytes) != *d {
            let _ = fs::remove_file(&path);
            return Err(CacheError::Corrupt { path, digest: *d });
        }
        Ok(bytes)
    }

    /// Stream a blob into `out`, verifying it. On a mismatch the blob is
    /// deleted and the caller must discard what was written.
    pub fn copy_to(&self, d: &Digest, out: &mut dyn Write) -> Result<u64, CacheError> {
        let path = self.blob_path(d);
        let mut f = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CacheError::Missing { digest: *d })
            }
            Err(e) => return Err(CacheError::Io { path, source: e }),
        };
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut n_total = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(io(&path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io(&path))?;
            n_total += n as u64;
        }
        if Digest(*h.finalize().as_bytes()) != *d {
            let _ = fs::remove_file(&path);
            return Err(CacheError::Corrupt { path, digest: *d });
        }
        Ok(n_total)
    }

    /// A streaming reader of a blob that verifies it as it goes: reading
    /// past the end of a blob whose digest does not match fails with
    /// `InvalidData`, deletes the blob, and [`BlobReader::corrupt`] then
    /// gives the error to return. Callers must read to the end before
    /// trusting anything they derived from it.
    pub fn reader(&self, d: &Digest) -> Result<BlobReader, CacheError> {
        let path = self.blob_path(d);
        match fs::File::open(&path) {
            Ok(f) => Ok(BlobReader { f, h: blake3::Hasher::new(), want: *d, path, bad: false }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CacheError::Missing { digest: *d }),
            Err(e) => Err(CacheError::Io { path, source: e }),
        }
    }

    /// Every blob: (digest named by the file, path, size, atime-ish mtime).
    pub fn blobs(&self) -> Vec<(String, PathBuf, u64, std::time::SystemTime)> {
        let mut out = Vec::new();
        for entry in
            walkdir::WalkDir::new(self.root.join("cas")).min_depth(2).max_depth(2).sort_by_file_name()
        {
            let Ok(entry) = entry else { continue };
            if let Ok(md) = entry.metadata() {
                if md.is_file() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    out.push((
                        name,
                        entry.path().to_path_buf(),
                        md.len(),
                        md.modified().unwrap_or(std::time::UNIX_EPOCH),
                    ));
                }
            }
        }
        out
    }
}

/// See [`Cas::reader`].
pub struct BlobReader {
    f: fs::File,
    h: blake3::Hasher,
    want: Digest,
    path: PathBuf,
    bad: bool,
}

impl BlobReader {
    /// The error to report once a read has failed verification.
    pub fn corrupt(&self) -> Option<CacheError> {
        self.bad.then(|| CacheError::Corrupt { path: self.path.clone(), digest: self.want })
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.f.read(buf)?;
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
    use super::*;

    #[test]
    fn put_read_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let d = cache.put(b"hello").unwrap();
        assert_eq!(cache.read(&d).unwrap(), b"hello");
        fs::write(cache.blob_path(&d), b"jello").unwrap();
        assert!(matches!(cache.read(&d), Err(CacheError::Corrupt { .. })));
        assert!(!cache.blob_path(&d).exists(), "corrupt blob is deleted");
        assert!(matches!(cache.read(&d), Err(CacheError::Missing { .. })));
    }
}
