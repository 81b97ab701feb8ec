//! [`HashingFile`]: a file written while a helper thread computes its
//! BLAKE3 (its name in the CAS) and SHA-256 (what manifests list), so a
//! large output is hashed once, as it is written, instead of being read
//! back by the executor and again by the publisher.
//!
//! Invariant: a [`Hashed`] is only made by [`HashingFile::finish`], from
//! exactly the bytes that went to the file, in order; its fields cannot be
//! set by anyone else, so [`super::Cache::put_hashed`] may take its BLAKE3
//! as the blob's name without reading the file again (it still checks the
//! size on disk). The writer buffers [`CHUNK`] bytes, writes them to the
//! file and hands them to the hashing thread, which hashes the previous
//! chunk while the caller produces the next: on two cores a 100 MB tar
//! costs about its copying, not its copying plus two hashes.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::digest::{Digest, Sha256};

/// Bytes handed to the hashing thread at a time.
const CHUNK: usize = 1 << 20;
/// Chunks in flight (bounds memory to a few MiB whatever the file's size).
const IN_FLIGHT: usize = 4;

/// A file's length and both digests, as written by [`HashingFile`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashed {
    path: PathBuf,
    blake3: Digest,
    sha256: Sha256,
    size: u64,
}

impl Hashed {
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn blake3(&self) -> Digest {
        self.blake3
    }
    pub fn sha256(&self) -> Sha256 {
        self.sha256
    }
    pub fn size(&self) -> u64 {
        self.size
    }
}

type Digests = (Digest, Sha256);

/// A buffered file writer hashing what it writes on a helper thread.
pub struct HashingFile {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    size: u64,
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    back: mpsc::Receiver<Vec<u8>>,
    done: Option<std::thread::JoinHandle<Digests>>,
}

impl HashingFile {
    /// Create (truncating) the file at `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = File::create(path)?;
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        // emptied chunks come back for reuse
        let (give_back, back) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
        let done = std::thread::Builder::new().name("hashing-file".into()).spawn(move || {
            use sha2::Digest as _;
            let (mut b3, mut sha) = (blake3::Hasher::new(), sha2::Sha256::new());
            for mut chunk in rx {
                b3.update(&chunk);
                sha.update(&chunk);
                chunk.clear();
                let _ = give_back.try_send(chunk);
            }
            (Digest(*b3.finalize().as_bytes()), Sha256(sha.finalize().into()))
        })?;
        Ok(HashingFile {
            file,
            path: path.to_path_buf(),
            buf: Vec::with_capacity(CHUNK),
            size: 0,
            tx: Some(tx),
            back,
            done: Some(done),
        })
    }

    /// Write the buffer out and hand it to the hashing thread.
    fn spill(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf)?;
        let next = self.back.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        self.tx
            .as_ref()
            .expect("open until finish")
            .send(full)
            .map_err(|_| std::io::Error::other("the hashing thread stopped"))
    }

    /// Flush, close the file and return what was written.
    pub fn finish(mut self) -> std::io::Result<Hashed> {
        self.spill()?;
        drop(self.tx.take());
        let (blake3, sha256) = self
            .done
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| std::io::Error::other("the hashing thread panicked"))?;
        Ok(Hashed { path: self.path.clone(), blake3, sha256, size: self.size })
    }
}

impl Write for HashingFile {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.size += n as u64;
        if self.buf.len() == CHUNK {
            self.spill()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        // bytes stay buffered until a chunk is full or `finish`: the file
        // is only read after `finish`
        Ok(())
    }
}

impl Drop for HashingFile {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.done.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_size_are_those_of_the_bytes_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut w = HashingFile::create(&p).unwrap();
        // odd-sized writes across several chunks
        let data: Vec<u8> = (0..(3 * CHUNK + 12_345)).map(|i| (i * 7 % 251) as u8).collect();
        for piece in data.chunks(100_003) {
            w.write_all(piece).unwrap();
        }
        let h = w.finish().unwrap();
        let on_disk = std::fs::read(&p).unwrap();
        assert_eq!(on_disk, data);
        assert_eq!(h.size(), data.len() as u64);
        assert_eq!(h.blake3(), Digest::of(&data));
        assert_eq!(h.sha256(), Sha256::of(&data));
        let empty = HashingFile::create(&dir.path().join("e")).unwrap().finish().unwrap();
        assert_eq!((empty.size(), empty.blake3()), (0, Digest::of(b"")));
    }
}
