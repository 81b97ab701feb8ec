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
//!
//! Where the file system allows it, whole chunks are written with
//! `O_DIRECT` (the last, partial one through the page cache): such a file
//! must reach the disk before anything is published anyway (one `syncfs`),
//! and nothing reads it back in this run, so copying it into the page
//! cache first only costs memory and time (about 3× on a VM that backs new
//! guest pages lazily; BENCHMARKS.md "Mirrors"). Where `O_DIRECT` is
//! refused (tmpfs, some FUSE and network file systems), or a direct write
//! fails as unsupported, the file is written normally.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::digest::{Digest, Sha256};

/// Bytes handed to the hashing thread at a time (a multiple of [`ALIGN`]).
const CHUNK: usize = 1 << 20;
/// Alignment `O_DIRECT` needs of buffers, offsets and lengths (the largest
/// logical block size in use).
const ALIGN: usize = 4096;
/// Chunks in flight (bounds memory to a few MiB whatever the file's size).
const IN_FLIGHT: usize = 4;

/// A file's length and both digests, as written by [`HashingFile`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashed {
    path: PathBuf,
    /// None when made by [`HashingFile::create_sha256`].
    blake3: Option<Digest>,
    sha256: Sha256,
    size: u64,
}

impl Hashed {
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The file's BLAKE3 (its CAS name); None when only SHA-256 was asked for.
    pub fn blake3(&self) -> Option<Digest> {
        self.blake3
    }
    pub fn sha256(&self) -> Sha256 {
        self.sha256
    }
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// A chunk buffer whose bytes start at an [`ALIGN`]ed address (safe code:
/// an over-allocated vector and the aligned window inside it).
struct Chunk {
    mem: Vec<u8>,
    start: usize,
    len: usize,
}

impl Chunk {
    fn new() -> Self {
        let mem = vec![0u8; CHUNK + ALIGN];
        let start = mem.as_ptr().align_offset(ALIGN);
        Chunk { mem, start, len: 0 }
    }
    fn bytes(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }
    fn room(&self) -> usize {
        CHUNK - self.len
    }
    fn push(&mut self, data: &[u8]) {
        let at = self.start + self.len;
        self.mem[at..at + data.len()].copy_from_slice(data);
        self.len += data.len();
    }
}

type Digests = (Option<Digest>, Sha256);

/// A file writer hashing what it writes on a helper thread.
pub struct HashingFile {
    file: File,
    path: PathBuf,
    /// Whole chunks still go out with `O_DIRECT`.
    direct: bool,
    buf: Chunk,
    size: u64,
    tx: Option<mpsc::SyncSender<Chunk>>,
    back: mpsc::Receiver<Chunk>,
    done: Option<std::thread::JoinHandle<Digests>>,
}

/// Open for writing, creating or truncating; with `O_DIRECT` if asked.
fn open(path: &Path, direct: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path)
}

/// Whether an error means "this file system does not do direct I/O".
fn unsupported(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EOPNOTSUPP))
}

impl HashingFile {
    /// Create (truncating) the file at `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Self::create_with(path, true, true)
    }

    /// A file whose SHA-256 alone is wanted (not stored in the CAS).
    pub fn create_sha256(path: &Path) -> std::io::Result<Self> {
        Self::create_with(path, true, false)
    }

    fn create_with(path: &Path, try_direct: bool, blake3: bool) -> std::io::Result<Self> {
        let (file, direct) = match open(path, try_direct) {
            Ok(f) => (f, try_direct),
            Err(e) if unsupported(&e) => (open(path, false)?, false),
            Err(e) => return Err(e),
        };
        let (tx, rx) = mpsc::sync_channel::<Chunk>(IN_FLIGHT);
        // emptied chunks come back for reuse
        let (give_back, back) = mpsc::sync_channel::<Chunk>(IN_FLIGHT + 1);
        let done = std::thread::Builder::new().name("hashing-file".into()).spawn(move || {
            use sha2::Digest as _;
            let (mut b3, mut sha) = (blake3.then(blake3::Hasher::new), sha2::Sha256::new());
            for mut chunk in rx {
                if let Some(b3) = b3.as_mut() {
                    b3.update(chunk.bytes());
                }
                sha.update(chunk.bytes());
                chunk.len = 0;
                let _ = give_back.try_send(chunk);
            }
            (b3.map(|h| Digest(*h.finalize().as_bytes())), Sha256(sha.finalize().into()))
        })?;
        Ok(HashingFile {
            file,
            path: path.to_path_buf(),
            direct,
            buf: Chunk::new(),
            size: 0,
            tx: Some(tx),
            back,
            done: Some(done),
        })
    }

    /// Stop using `O_DIRECT` on the open file (for a partial last chunk,
    /// or when a direct write is refused).
    fn buffered(&mut self) -> std::io::Result<()> {
        if !self.direct {
            return Ok(());
        }
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own; only the status flags change.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.direct = false;
        Ok(())
    }

    /// Write the buffer out and hand it to the hashing thread.
    fn spill(&mut self) -> std::io::Result<()> {
        if self.buf.len == 0 {
            return Ok(());
        }
        if self.direct && !self.buf.len.is_multiple_of(ALIGN) {
            self.buffered()?;
        }
        match self.file.write_all(self.buf.bytes()) {
            // a direct write failing as unsupported leaves the file as it was
            // at the last whole chunk (a failed direct write moves nothing)
            Err(e) if self.direct && unsupported(&e) => {
                use std::io::Seek;
                self.buffered()?;
                self.file.seek(std::io::SeekFrom::Start(self.size - self.buf.len as u64))?;
                self.file.write_all(self.buf.bytes())?;
            }
            r => r?,
        }
        let next = self.back.try_recv().unwrap_or_else(|_| Chunk::new());
        let full = std::mem::replace(&mut self.buf, next);
        self.tx
            .as_ref()
            .expect("open until finish")
            .send(full)
            .map_err(|_| std::io::Error::other("the hashing thread stopped"))
    }

    /// Write what is buffered, close the file and return what was written.
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
        let n = data.len().min(self.buf.room());
        self.buf.push(&data[..n]);
        self.size += n as u64;
        if self.buf.room() == 0 {
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

    fn check_in(dir: &Path, try_direct: bool) -> bool {
        let p = dir.join("f");
        let mut w = HashingFile::create_with(&p, try_direct, true).unwrap();
        let direct = w.direct;
        // odd-sized writes across several chunks and a partial last one
        let data: Vec<u8> = (0..(3 * CHUNK + 12_345)).map(|i| (i * 7 % 251) as u8).collect();
        for piece in data.chunks(100_003) {
            w.write_all(piece).unwrap();
        }
        let h = w.finish().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), data);
        assert_eq!(h.size(), data.len() as u64);
        assert_eq!(h.blake3(), Some(Digest::of(&data)));
        assert_eq!(h.sha256(), Sha256::of(&data));
        let empty = HashingFile::create_with(&dir.join("e"), try_direct, true).unwrap().finish().unwrap();
        assert_eq!((empty.size(), empty.blake3()), (0, Some(Digest::of(b""))));
        let mut w = HashingFile::create_sha256(&dir.join("s")).unwrap();
        w.write_all(&data).unwrap();
        let h = w.finish().unwrap();
        assert_eq!((h.sha256(), h.blake3()), (Sha256::of(&data), None));
        assert_eq!(std::fs::metadata(dir.join("e")).unwrap().len(), 0);
        direct
    }

    #[test]
    fn digests_and_size_are_those_of_the_bytes_on_disk() {
        assert_eq!(Chunk::new().bytes().as_ptr().align_offset(ALIGN), 0);
        let dir = tempfile::tempdir().unwrap();
        // direct where the temp folder's file system allows it, else buffered
        check_in(dir.path(), true);
        // where O_DIRECT is refused (or not tried): through the page cache
        assert!(!check_in(dir.path(), false));
    }
}
