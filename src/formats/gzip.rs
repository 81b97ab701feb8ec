//! Deterministic parallel gzip (the pigz technique, without dictionaries).
//!
//! The input is cut into fixed [`CHUNK`]-byte chunks by offset; each chunk
//! is compressed independently as raw deflate and ended with a sync flush
//! (the last with the final block), and the pieces are concatenated into
//! one gzip member: a valid deflate stream, since no block refers back
//! across a chunk boundary. The cut points depend only on the input, never
//! on the number of threads, so the same bytes always give the same file.
//! Header: mtime 0, no file name, OS byte 255; trailer: CRC-32 and size of
//! the whole input. Chunks are compressed in batches on the rayon pool,
//! so memory is a few batches, whatever the input size.
//!
//! Because a piece depends only on its chunk's bytes, the level and whether
//! it is last, pieces can be cached by that key ([`PieceCache`]): a DB
//! rebuilt after one changed advisory differs from the last one in a few
//! pages, so all but a chunk or two come from the cache, byte-identical to
//! compressing them again.
//!
//! Why our own: a gzip writer compresses the whole archive again on one
//! core, and the DB archive is rewritten on every rebuild (one changed
//! advisory); that was most of the rebuild's time. Compression loses ~1% to
//! the chunk boundaries at 1 MiB chunks.

use std::io::{Read, Write};

use rayon::prelude::*;

/// Bytes of input per independently compressed piece.
pub const CHUNK: usize = 1 << 20;
/// Chunks compressed per parallel batch.
const BATCH: usize = 8;

fn deflate_chunk(data: &[u8], level: u32, last: bool) -> std::io::Result<Vec<u8>> {
    let mut c = flate2::Compress::new(flate2::Compression::new(level), false);
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    let flush = if last { flate2::FlushCompress::Finish } else { flate2::FlushCompress::Sync };
    loop {
        let consumed = c.total_in() as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 << 10));
        }
        let status = c.compress_vec(&data[consumed..], &mut out, flush).map_err(std::io::Error::other)?;
        let done_input = c.total_in() as usize == data.len();
        match status {
            flate2::Status::StreamEnd => break,
            // a sync flush is complete once all input is in and output did not fill up
            _ if !last && done_input && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    Ok(out)
}

/// Compressed pieces by key (see the module doc). Implementations must
/// return exactly what they were given, or nothing.
pub trait PieceCache: Sync {
    fn get(&self, key: &[u8; 32]) -> Option<Vec<u8>>;
    fn put(&self, key: &[u8; 32], piece: &[u8]);
}

fn piece_key(data: &[u8], level: u32, last: bool) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"gzip-piece-v1\0");
    h.update(&level.to_le_bytes());
    h.update(&[last as u8]);
    h.update(data);
    *h.finalize().as_bytes()
}

fn piece(data: &[u8], level: u32, last: bool, cache: Option<&dyn PieceCache>) -> std::io::Result<Vec<u8>> {
    let Some(cache) = cache else { return deflate_chunk(data, level, last) };
    let key = piece_key(data, level, last);
    if let Some(p) = cache.get(&key) {
        return Ok(p);
    }
    let p = deflate_chunk(data, level, last)?;
    cache.put(&key, &p);
    Ok(p)
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Compress everything `input` yields into `out` as one gzip member.
pub fn compress<W: Write>(input: &mut dyn Read, out: W, level: u32) -> std::io::Result<W> {
    compress_cached(input, out, level, None)
}

/// [`compress`], taking pieces from `cache` when it has them.
pub fn compress_cached<W: Write>(
    input: &mut dyn Read,
    out: W,
    level: u32,
    cache: Option<&dyn PieceCache>,
) -> std::io::Result<W> {
    compress_observed(input, out, level, cache, &mut |_| {})
}

/// [`compress_cached`], handing every input byte, in order, to `observe`
/// (a hasher of the members, say) while the batch's pieces are compressed
/// or looked up: the two run side by side on the rayon pool.
pub fn compress_observed<W: Write>(
    input: &mut dyn Read,
    mut out: W,
    level: u32,
    cache: Option<&dyn PieceCache>,
    observe: &mut (dyn FnMut(&[u8]) + Send),
) -> std::io::Result<W> {
    out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
    let mut crc = flate2::Crc::new();
    let mut pending: Option<Vec<u8>> = None;
    loop {
        // read a batch; the chunk after it (if any) is kept to know which chunk is last
        let mut batch: Vec<Vec<u8>> = pending.take().into_iter().collect();
        let mut eof = false;
        while batch.len() <= BATCH {
            let mut buf = vec![0u8; CHUNK];
            let n = read_full(input, &mut buf)?;
            buf.truncate(n);
            if n == 0 {
                eof = true;
                break;
            }
            batch.push(buf);
            if n < CHUNK {
                eof = true;
                break;
            }
        }
        if !eof {
            pending = batch.pop();
        }
        if batch.is_empty() {
            // empty input, or input ending exactly on a batch boundary
            out.write_all(&piece(&[], level, true, cache)?)?;
            break;
        }
        let count = batch.len();
        let (pieces, ()) = rayon::join(
            || -> Vec<std::io::Result<Vec<u8>>> {
                batch
                    .par_iter()
                    .enumerate()
                    .map(|(i, data)| piece(data, level, eof && i + 1 == count, cache))
                    .collect()
            },
            || {
                for data in &batch {
                    crc.update(data);
                    observe(data);
                }
            },
        );
        for piece in pieces {
            out.write_all(&piece?)?;
        }
        if eof {
            break;
        }
    }
    out.write_all(&crc.sum().to_le_bytes())?;
    out.write_all(&crc.amount().to_le_bytes())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(data: &[u8]) -> Vec<u8> {
        let gz = compress(&mut &data[..], Vec::new(), 6).unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data, "round trip of {} bytes", data.len());
        gz
    }

    #[test]
    fn round_trips_at_every_boundary_and_is_deterministic() {
        let mut data = Vec::new();
        let mut x: u64 = 1;
        while data.len() < CHUNK * (BATCH + 3) + 123 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            data.extend_from_slice(format!("{} {}\n", x % 1000, x >> 50).as_bytes());
        }
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, CHUNK * BATCH, CHUNK * (BATCH + 1), data.len()] {
            roundtrip(&data[..len]);
        }
        let a = roundtrip(&data);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let b = one.install(|| compress(&mut &data[..], Vec::new(), 6).unwrap());
        assert_eq!(a, b, "thread count changes nothing");
        // cached pieces give the same bytes, and are used
        struct Mem(
            std::sync::Mutex<std::collections::HashMap<[u8; 32], Vec<u8>>>,
            std::sync::atomic::AtomicUsize,
        );
        impl PieceCache for Mem {
            fn get(&self, k: &[u8; 32]) -> Option<Vec<u8>> {
                let hit = self.0.lock().unwrap().get(k).cloned();
                if hit.is_some() {
                    self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                hit
            }
            fn put(&self, k: &[u8; 32], p: &[u8]) {
                self.0.lock().unwrap().insert(*k, p.to_vec());
            }
        }
        let mem = Mem(Default::default(), Default::default());
        assert_eq!(compress_cached(&mut &data[..], Vec::new(), 6, Some(&mem)).unwrap(), a);
        let mut edited = data.clone();
        edited[CHUNK + 5] ^= 1;
        let fresh = compress(&mut &edited[..], Vec::new(), 6).unwrap();
        assert_eq!(compress_cached(&mut &edited[..], Vec::new(), 6, Some(&mem)).unwrap(), fresh);
        assert_eq!(
            mem.1.load(std::sync::atomic::Ordering::Relaxed),
            data.len().div_ceil(CHUNK) - 1,
            "every unchanged chunk was a hit"
        );
        // `gzip -t` style: the system decoder agrees when present
        if let Ok(mut child) =
            std::process::Command::new("gzip").arg("-t").stdin(std::process::Stdio::piped()).spawn()
        {
            child.stdin.take().unwrap().write_all(&a).unwrap();
            assert!(child.wait().unwrap().success(), "gzip -t rejects our output");
        }
    }
}
