//! Stat cache: lets a build skip reading input files that did not change.
//!
//! One file per source, `stat/<b3(source name + path)>.bin`, a compact
//! binary table (fast to load at 300k entries):
//!
//! ```text
//! "ECSTAT1\n" | saved_ns i128 | count u64 | count × entry
//! entry = path_len u32 | path | size u64 | mtime_ns i128 | ctime_ns i128 | ino u64 | sha256 [32]
//! ```
//!
//! An entry is trusted when size, mtime_ns, ctime_ns and inode all match
//! and the file's mtime is older than the moment the table was saved by
//! more than [`RACY_NS`] (git's "racily clean" rule: a file modified within
//! the same timestamp tick as the save could change without its stat
//! changing). Wall-clock time is used only here, never in keys or outputs.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::{Cache, CacheError};
use crate::digest::{FieldHasher, Sha256};

/// File timestamps are coarse (a kernel tick); entries this close to the save are re-read.
pub const RACY_NS: i128 = 20_000_000;

const MAGIC: &[u8; 8] = b"ECSTAT1\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatKey {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
}

impl StatKey {
    pub fn of(md: &fs::Metadata) -> Self {
        StatKey {
            size: md.len(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
            ctime_ns: md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128,
            ino: md.ino(),
        }
    }
}

#[derive(Default)]
pub struct StatTable {
    saved_ns: i128,
    entries: HashMap<String, (StatKey, Sha256)>,
}

impl StatTable {
    /// The remembered digest if the file is unchanged.
    pub fn get(&self, path: &str, key: &StatKey) -> Option<Sha256> {
        let (k, d) = self.entries.get(path)?;
        (k == key && self.saved_ns - key.mtime_ns > RACY_NS).then_some(*d)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn encode(entries: &[(String, StatKey, Sha256)], saved_ns: i128) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + entries.len() * 120);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&saved_ns.to_le_bytes());
        out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for (p, k, d) in entries {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p.as_bytes());
            out.extend_from_slice(&k.size.to_le_bytes());
            out.extend_from_slice(&k.mtime_ns.to_le_bytes());
            out.extend_from_slice(&k.ctime_ns.to_le_bytes());
            out.extend_from_slice(&k.ino.to_le_bytes());
            out.extend_from_slice(&d.0);
        }
        out
    }

    fn decode(b: &[u8]) -> Option<StatTable> {
        let mut r = Reader { b, pos: 0 };
        if r.take(8)? != MAGIC {
            return None;
        }
        let saved_ns = i128::from_le_bytes(r.take(16)?.try_into().ok()?);
        let count = u64::from_le_bytes(r.take(8)?.try_into().ok()?) as usize;
        let mut entries = HashMap::with_capacity(count.min(1 << 22));
        for _ in 0..count {
            let len = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
            let path = std::str::from_utf8(r.take(len)?).ok()?.to_string();
            let size = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
            let mtime_ns = i128::from_le_bytes(r.take(16)?.try_into().ok()?);
            let ctime_ns = i128::from_le_bytes(r.take(16)?.try_into().ok()?);
            let ino = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
            let d = Sha256(r.take(32)?.try_into().ok()?);
            entries.insert(path, (StatKey { size, mtime_ns, ctime_ns, ino }, d));
        }
        Some(StatTable { saved_ns, entries })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(s)
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

impl Cache {
    fn stat_path(&self, scope: &str) -> PathBuf {
        let h = FieldHasher::new("stat").field(scope.as_bytes()).finish();
        self.root.join("stat").join(format!("{}.bin", &h.hex()[..32]))
    }

    /// Load the table for `scope` (source name + absolute path); empty if absent or unreadable.
    pub fn load_stats(&self, scope: &str) -> StatTable {
        fs::read(self.stat_path(scope)).ok().and_then(|b| StatTable::decode(&b)).unwrap_or_default()
    }

    /// Replace the table for `scope` with `entries` (the files seen this run).
    pub fn save_stats(&self, scope: &str, entries: &[(String, StatKey, Sha256)]) -> Result<(), CacheError> {
        self.write_atomic(&self.stat_path(scope), &StatTable::encode(entries, now_ns()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_racy_rule() {
        let k = StatKey { size: 3, mtime_ns: 1_000, ctime_ns: 1_000, ino: 7 };
        let d = Sha256::of(b"abc");
        let t =
            StatTable::decode(&StatTable::encode(&[("a.json".into(), k, d)], 1_000 + RACY_NS + 1)).unwrap();
        assert_eq!(t.get("a.json", &k), Some(d));
        assert_eq!(t.get("a.json", &StatKey { size: 4, ..k }), None);
        let racy =
            StatTable::decode(&StatTable::encode(&[("a.json".into(), k, d)], 1_000 + RACY_NS)).unwrap();
        assert_eq!(racy.get("a.json", &k), None, "modified within the racy window: re-read");
        assert!(StatTable::decode(b"garbage").is_none());
    }
}
