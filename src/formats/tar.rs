//! Deterministic tar, written by hand for exact control of every header
//! byte (a general tar library decides defaults such as user names, PAX or
//! GNU extensions and device fields for us; here each is fixed).
//!
//! Members are POSIX ustar: regular files only, mode 0644, uid/gid 0, empty
//! user and group names, mtime = the pinned time, no PAX or GNU headers,
//! hence no atime/ctime. Paths over 100 bytes use the ustar `prefix` field.
//!
//! A bundle is a sequence of zstd frames: one frame per member (header,
//! data, padding to 512) and a final frame holding the two zero blocks that
//! end the archive. Concatenated zstd frames are one valid zstd stream, so
//! `zstd -d | tar -x` and `tar --zstd -x` read it as one `.tar.zst`, and
//! changing one member re-compresses only its frame.
//!
//! Frames use the profile's zstd level with a window chosen by the frame's
//! size alone ([`window_log`]): 2 MiB up to 2 MiB of input (zstd would
//! not use more), and zstd's own level-19 window of 8 MiB
//! ([`MAX_WINDOW_LOG`]) above, where a 2 MiB window lost 10 % on the real
//! corpus's large SBOM member. A large-window compressor needs about
//! 90 MiB of match tables at level 19, a 2 MiB one about 35 MiB; callers
//! reserve memory by the same size rule. Readers need no option: plain
//! `zstd -d` accepts windows up to 128 MiB.

pub const BLOCK: usize = 512;

/// log2 of the window of frames up to 2 MiB of input.
pub const WINDOW_LOG: u32 = 21;

/// log2 of the largest zstd window a frame may use (frames over 2 MiB).
pub const MAX_WINDOW_LOG: u32 = 23;

/// The window of a frame of `size` bytes of input.
pub fn window_log(size: u64) -> u32 {
    if size > 1 << WINDOW_LOG {
        MAX_WINDOW_LOG
    } else {
        WINDOW_LOG
    }
}

fn octal(field: &mut [u8], value: u64) -> Result<(), String> {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return Err(format!("value {value} does not fit a {digits}-digit tar field"));
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// The 512-byte ustar header of a regular file.
pub fn header(path: &str, size: u64, mtime: i64) -> Result<[u8; BLOCK], String> {
    let mut h = [0u8; BLOCK];
    let bytes = path.as_bytes();
    if bytes.is_empty() || path.starts_with('/') || path.split('/').any(|c| c == ".." || c.is_empty()) {
        return Err(format!("bad member path {path:?}"));
    }
    if bytes.len() <= 100 {
        h[..bytes.len()].copy_from_slice(bytes);
    } else {
        // split at a '/' so that prefix <= 155 and name <= 100
        let split = (0..bytes.len())
            .rev()
            .find(|&i| bytes[i] == b'/' && i <= 155 && bytes.len() - i - 1 <= 100)
            .ok_or_else(|| format!("member path too long for ustar: {path:?}"))?;
        h[..bytes.len() - split - 1].copy_from_slice(&bytes[split + 1..]);
        h[345..345 + split].copy_from_slice(&bytes[..split]);
    }
    octal(&mut h[100..108], 0o644)?;
    octal(&mut h[108..116], 0)?;
    octal(&mut h[116..124], 0)?;
    octal(&mut h[124..136], size)?;
    octal(&mut h[136..148], mtime.max(0) as u64)?;
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0)?;
    octal(&mut h[337..345], 0)?;
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    Ok(h)
}

/// Header, data and zero padding of one member (`encode-member` builds the
/// same bytes in place, without the copy).
pub fn member(path: &str, data: &[u8], mtime: i64) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(BLOCK + data.len() + BLOCK);
    out.extend_from_slice(&header(path, data.len() as u64, mtime)?);
    out.extend_from_slice(data);
    out.resize(out.len() + (BLOCK - data.len() % BLOCK) % BLOCK, 0);
    Ok(out)
}

/// One zstd frame of `bytes`, with the content size in the frame header and
/// no dictionary or checksum variance: the same bytes and level give the
/// same frame.
pub fn frame(bytes: &[u8], level: i32) -> Result<Vec<u8>, String> {
    let mut c = zstd::bulk::Compressor::new(level).map_err(|e| e.to_string())?;
    c.include_checksum(true).map_err(|e| e.to_string())?;
    c.include_contentsize(true).map_err(|e| e.to_string())?;
    c.set_parameter(zstd::stream::raw::CParameter::WindowLog(window_log(bytes.len() as u64)))
        .map_err(|e| e.to_string())?;
    c.compress(bytes).map_err(|e| e.to_string())
}

/// A streaming writer of one zstd frame of `size` bytes with the
/// parameters [`frame`] uses (checksum, content size, the window of
/// [`window_log`]): a member too large to hold is framed as it streams.
pub fn frame_writer<W: std::io::Write>(
    w: W,
    level: i32,
    size: u64,
) -> std::io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut z = zstd::stream::write::Encoder::new(w, level)?;
    z.include_checksum(true)?;
    z.include_contentsize(true)?;
    z.set_pledged_src_size(Some(size))?;
    z.set_parameter(zstd::stream::raw::CParameter::WindowLog(window_log(size)))?;
    Ok(z)
}

/// A gzip-compressed tar of `files` (member name, file on disk) in the
/// order given, each member as [`header`] describes, streamed from disk
/// and compressed by [`super::gzip`] (deterministic, parallel, level 6).
/// Returns the sink and each member's SHA-256 and size, hashed on the way
/// (beside the compression, not before it: [`super::gzip::compress_observed`]).
pub fn write_tar_gz<W: std::io::Write>(
    out: W,
    files: &[(&str, &std::path::Path)],
    mtime: i64,
    cache: Option<&dyn super::gzip::PieceCache>,
) -> std::io::Result<(W, Vec<(crate::digest::Sha256, u64)>)> {
    use std::io::Read;
    let mut stream: Box<dyn Read> = Box::new(std::io::empty());
    // each member's data as a range of the tar stream, hashed by range
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut at = 0u64;
    for (name, path) in files {
        let f = std::fs::File::open(path)?;
        let size = f.metadata()?.len();
        let head = header(name, size, mtime).map_err(std::io::Error::other)?;
        let pad = vec![0u8; (BLOCK - (size as usize) % BLOCK) % BLOCK];
        ranges.push((at + BLOCK as u64, at + BLOCK as u64 + size));
        at += BLOCK as u64 + size + pad.len() as u64;
        // take(size): a file that grows while archived cannot corrupt the tar
        stream = Box::new(
            stream.chain(std::io::Cursor::new(head)).chain(f.take(size)).chain(std::io::Cursor::new(pad)),
        );
    }
    let mut stream = stream.chain(std::io::Cursor::new(vec![0u8; 2 * BLOCK]));
    let mut shas: Vec<sha2::Sha256> = ranges.iter().map(|_| sha2::Digest::new()).collect();
    let mut pos = 0u64;
    let mut observe = |data: &[u8]| {
        let end = pos + data.len() as u64;
        for ((from, to), sha) in ranges.iter().zip(shas.iter_mut()) {
            let (a, b) = (pos.max(*from), end.min(*to));
            if a < b {
                sha2::Digest::update(sha, &data[(a - pos) as usize..(b - pos) as usize]);
            }
        }
        pos = end;
    };
    let out = super::gzip::compress_observed(&mut stream, out, 6, cache, &mut observe)?;
    drop(stream);
    let digests = shas
        .into_iter()
        .zip(&ranges)
        .map(|(sha, (from, to))| (crate::digest::Sha256(sha2::Digest::finalize(sha).into()), to - from))
        .collect();
    Ok((out, digests))
}

/// The frame that ends every bundle: two zero blocks.
pub fn end_frame(level: i32) -> Result<Vec<u8>, String> {
    frame(&[0u8; 2 * BLOCK], level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn members_read_back_with_a_tar_reader() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let mut bytes = frame(&member("a/b.jsonl", b"{}\n", 1735689600).unwrap(), 3).unwrap();
        bytes.extend(frame(&member(&long, b"x", 1735689600).unwrap(), 3).unwrap());
        bytes.extend(end_frame(3).unwrap());
        let plain = zstd::decode_all(&bytes[..]).unwrap();
        let mut ar = ::tar::Archive::new(&plain[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            assert_eq!(e.header().mode().unwrap(), 0o644);
            assert_eq!(e.header().mtime().unwrap(), 1735689600);
            assert_eq!(e.header().uid().unwrap(), 0);
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            seen.push((e.path().unwrap().display().to_string(), s));
        }
        assert_eq!(seen, vec![("a/b.jsonl".into(), "{}\n".into()), (long, "x".into())]);
    }

    #[test]
    fn refuses_bad_paths() {
        assert!(header("../x", 1, 0).is_err());
        assert!(header("/x", 1, 0).is_err());
        assert!(header(&"x".repeat(300), 1, 0).is_err());
    }
}
