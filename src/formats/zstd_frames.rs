//! The frame boundaries of a zstd stream, found from frame and block
//! headers alone (RFC 8878 §3.1.1), seeking over their contents: nothing
//! is decompressed or even read but the headers.
//!
//! Our bundles are one zstd frame per tar member ([`super::tar`]), so the
//! bytes of an unchanged member can be copied from an earlier bundle once
//! its frames are located; `mirror apply` does this. Only standard frames
//! are accepted (a skippable frame, a reserved block type or a truncated
//! stream is an error): a caller falls back to encoding, and always checks
//! the bytes it assembles against a signed digest.

use std::io::{BufReader, Read, Seek};

const MAGIC: u32 = 0xFD2F_B528;

fn bytes<const N: usize>(r: &mut impl Read) -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    r.read_exact(&mut b).map_err(|_| "truncated zstd frame".to_string())?;
    Ok(b)
}

/// The length in bytes of each frame of the stream `r` of `len` bytes, in
/// order. Frame contents are skipped by seeking, not read.
pub fn frame_lengths(r: impl Read + Seek, len: u64) -> Result<Vec<u64>, String> {
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let mut at = 0u64;
    let mut out = Vec::new();
    let skip = |r: &mut BufReader<_>, n: u64, at: &mut u64| -> Result<(), String> {
        *at += n;
        if *at > len {
            return Err("truncated zstd frame".into());
        }
        r.seek_relative(n as i64).map_err(|e| e.to_string())
    };
    while at < len {
        let start = at;
        let magic = u32::from_le_bytes(bytes::<4>(&mut r)?);
        if magic != MAGIC {
            return Err(format!("not a zstd frame (magic {magic:#010x}) at frame {}", out.len()));
        }
        let [fhd] = bytes::<1>(&mut r)?;
        at += 5;
        let single_segment = fhd & 0x20 != 0;
        if fhd & 0x08 != 0 {
            return Err("zstd frame header: reserved bit set".into());
        }
        let checksum = fhd & 0x04 != 0;
        let dict = [0u64, 1, 2, 4][(fhd & 0x03) as usize];
        let fcs = match fhd >> 6 {
            0 => u64::from(single_segment),
            1 => 2,
            2 => 4,
            _ => 8,
        };
        skip(&mut r, u64::from(!single_segment) + dict + fcs, &mut at)?;
        loop {
            let b = bytes::<3>(&mut r)?;
            at += 3;
            let h = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
            let size = u64::from(h >> 3);
            let body = match (h >> 1) & 0x03 {
                0 | 2 => size,
                1 => 1,
                _ => return Err("zstd block: reserved block type".into()),
            };
            skip(&mut r, body, &mut at)?;
            if h & 1 != 0 {
                break;
            }
        }
        if checksum {
            skip(&mut r, 4, &mut at)?;
        }
        out.push(at - start);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8], level: i32, checksum: bool) -> Vec<u8> {
        let mut z = zstd::stream::write::Encoder::new(Vec::new(), level).unwrap();
        z.include_checksum(checksum).unwrap();
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }
    use std::io::Write;

    #[test]
    fn finds_each_frame_of_a_concatenation() {
        let big: Vec<u8> = (0..400_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let frames = [
            frame(b"", 1, true),
            frame(b"hello", 3, false),
            frame(&big, 1, true),
            frame(&[7u8; 300_000], 19, true),
        ];
        let stream: Vec<u8> = frames.concat();
        let lens = frame_lengths(std::io::Cursor::new(&stream), stream.len() as u64).unwrap();
        assert_eq!(lens, frames.iter().map(|f| f.len() as u64).collect::<Vec<_>>());
        // the whole stream still decodes as one
        assert_eq!(zstd::decode_all(&stream[..]).unwrap().len(), 5 + big.len() + 300_000);
    }

    #[test]
    fn refuses_truncated_and_foreign_streams() {
        let f = frame(b"some bytes to compress", 1, true);
        assert!(frame_lengths(std::io::Cursor::new(&f[..f.len() - 1]), f.len() as u64 - 1).is_err());
        assert!(frame_lengths(std::io::Cursor::new(b"PK\x03\x04 not zstd"), 14).is_err());
        assert_eq!(frame_lengths(std::io::Cursor::new(b""), 0).unwrap(), Vec::<u64>::new());
    }
}
