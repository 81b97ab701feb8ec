//! The frame boundaries of a zstd stream, found from frame and block
//! headers alone (RFC 8878 §3.1.1), without decompressing anything.
//!
//! Our bundles are one zstd frame per tar member ([`super::tar`]), so the
//! bytes of an unchanged member can be copied from an earlier bundle once
//! its frames are located; `mirror apply` does this. Only standard frames
//! are accepted (a skippable frame, a reserved block type or a truncated
//! stream is an error): a caller falls back to encoding, and always checks
//! the bytes it assembles against a signed digest.

use std::io::{BufRead, Read};

const MAGIC: u32 = 0xFD2F_B528;

/// Skip `n` bytes of `r`.
fn skip(r: &mut impl BufRead, n: u64) -> Result<(), String> {
    let got = std::io::copy(&mut r.take(n), &mut std::io::sink()).map_err(|e| e.to_string())?;
    if got == n {
        Ok(())
    } else {
        Err("truncated zstd frame".into())
    }
}

fn bytes<const N: usize>(r: &mut impl Read) -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    r.read_exact(&mut b).map_err(|_| "truncated zstd frame".to_string())?;
    Ok(b)
}

/// The length in bytes of each frame of the stream `r`, in order.
pub fn frame_lengths(r: impl Read) -> Result<Vec<u64>, String> {
    let mut r = std::io::BufReader::with_capacity(256 * 1024, r);
    let mut out = Vec::new();
    while !r.fill_buf().map_err(|e| e.to_string())?.is_empty() {
        let magic = u32::from_le_bytes(bytes::<4>(&mut r)?);
        if magic != MAGIC {
            return Err(format!("not a zstd frame (magic {magic:#010x}) at frame {}", out.len()));
        }
        let [fhd] = bytes::<1>(&mut r)?;
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
        let header = 1 + u64::from(!single_segment) + dict + fcs;
        skip(&mut r, header - 1)?;
        let mut len = 4 + header;
        loop {
            let b = bytes::<3>(&mut r)?;
            let h = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
            let size = u64::from(h >> 3);
            let body = match (h >> 1) & 0x03 {
                0 | 2 => size,
                1 => 1,
                _ => return Err("zstd block: reserved block type".into()),
            };
            skip(&mut r, body)?;
            len += 3 + body;
            if h & 1 != 0 {
                break;
            }
        }
        if checksum {
            skip(&mut r, 4)?;
            len += 4;
        }
        out.push(len);
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
        let lens = frame_lengths(&stream[..]).unwrap();
        assert_eq!(lens, frames.iter().map(|f| f.len() as u64).collect::<Vec<_>>());
        // the whole stream still decodes as one
        assert_eq!(zstd::decode_all(&stream[..]).unwrap().len(), 5 + big.len() + 300_000);
    }

    #[test]
    fn refuses_truncated_and_foreign_streams() {
        let f = frame(b"some bytes to compress", 1, true);
        assert!(frame_lengths(&f[..f.len() - 1]).is_err());
        assert!(frame_lengths(&b"PK\x03\x04 not zstd"[..]).is_err());
        assert_eq!(frame_lengths(&b""[..]).unwrap(), Vec::<u64>::new());
    }
}
