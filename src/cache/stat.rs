//! Stat cache: lets a build skip reading input files that did not change.
//! Local only (it describes this machine's files); loading a table records
//! its use for `cache gc`. Other facts about a source (its tree digest, an
//! archive's index) are memos in the same area ([`super::memo`]).
//!
//! One file per source, `stat/<b3(scope)>.bin`, a compact binary table
//! sorted by path, so a sorted directory listing is matched against it in
//! one merge pass with no hash map (fast and small at 300k entries):
//!
//! ```text
//! "ECSTAT2\n" | taken_ns i128 | count u64 | count × entry
//! entry = path_len u32 | path | size u64 | mtime_ns i128 | ctime_ns i128 | ino u64 | sha256 [32]
//! ```
//!
//! An entry is trusted when size, mtime_ns, ctime_ns and inode all match
//! and the file's mtime is older than the moment the listing was *taken*
//! (wall clock, before the walk) by more than [`RACY_NS`]: git's "racily
//! clean" rule. A file rewritten with the same size within one timestamp
//! tick of the listing keeps its whole stat on a coarse file system (1 s on
//! ext4 with small inodes, 2 s on FAT), so such entries are re-read next
//! time. Wall-clock time is used only here, never in keys or outputs.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::{Cache, CacheError};
use crate::digest::{FieldHasher, Sha256};

/// The coarsest file timestamp granularity we allow for (FAT: 2 s);
/// entries modified this close to the listing are re-read next time.
pub const RACY_NS: i128 = 2_000_000_000;

const MAGIC: &[u8; 8] = b"ECSTAT2\n";
const FIXED: usize = 8 + 16 + 16 + 8 + 32;

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

/// A loaded table: the raw bytes, walked in order.
#[derive(Default)]
pub struct StatTable {
    taken_ns: i128,
    count: usize,
    bytes: Vec<u8>,
}

/// A forward cursor over a table, for merging with a sorted listing.
pub struct Cursor<'a> {
    table: &'a StatTable,
    pos: usize,
    left: usize,
}

impl<'a> Cursor<'a> {
    fn entry(&self) -> Option<(&'a [u8], StatKey, Sha256, usize)> {
        if self.left == 0 {
            return None;
        }
        let b = &self.table.bytes;
        let len = u32::from_le_bytes(b.get(self.pos..self.pos + 4)?.try_into().ok()?) as usize;
        let p = self.pos + 4;
        let path = b.get(p..p + len)?;
        let f = b.get(p + len..p + len + FIXED)?;
        let key = StatKey {
            size: u64::from_le_bytes(f[0..8].try_into().ok()?),
            mtime_ns: i128::from_le_bytes(f[8..24].try_into().ok()?),
            ctime_ns: i128::from_le_bytes(f[24..40].try_into().ok()?),
            ino: u64::from_le_bytes(f[40..48].try_into().ok()?),
        };
        let d = Sha256(f[48..80].try_into().ok()?);
        Some((path, key, d, p + len + FIXED))
    }

    /// The remembered digest of `path` if its stat is unchanged. Calls must
    /// come in ascending path order.
    pub fn seek(&mut self, path: &str, key: &StatKey) -> Option<Sha256> {
        while let Some((p, k, d, next)) = self.entry() {
            match p.cmp(path.as_bytes()) {
                std::cmp::Ordering::Less => {
                    self.pos = next;
                    self.left -= 1;
                }
                std::cmp::Ordering::Equal => {
                    self.pos = next;
                    self.left -= 1;
                    let fresh = k == *key && self.table.taken_ns - key.mtime_ns > RACY_NS;
                    return fresh.then_some(d);
                }
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
}

impl StatTable {
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor { table: self, pos: 32.min(self.bytes.len()), left: self.count }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Entries must be in ascending path order.
    pub fn encode<'a>(
        entries: impl ExactSizeIterator<Item = (&'a str, StatKey, Sha256)>,
        taken_ns: i128,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + entries.len() * 120);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&taken_ns.to_le_bytes());
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

    fn decode(b: Vec<u8>) -> Option<StatTable> {
        if b.get(..8)? != MAGIC {
            return None;
        }
        let taken_ns = i128::from_le_bytes(b.get(8..24)?.try_into().ok()?);
        let count = u64::from_le_bytes(b.get(24..32)?.try_into().ok()?) as usize;
        let t = StatTable { taken_ns, count, bytes: b };
        // validate once so cursors can trust the layout
        let mut c = t.cursor();
        let mut n = 0;
        let mut last: Option<&[u8]> = None;
        while let Some((p, _, _, next)) = c.entry() {
            if last.is_some_and(|l| l >= p) {
                return None;
            }
            last = Some(p);
            c.pos = next;
            c.left -= 1;
            n += 1;
        }
        (n == count && c.pos == t.bytes.len()).then_some(t)
    }
}

pub fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

impl Cache {
    fn stat_path(&self, scope: &str) -> PathBuf {
        let h = FieldHasher::new("stat").field(scope.as_bytes()).finish();
        self.files.root.join("stat").join(format!("{}.bin", &h.hex()[..32]))
    }

    /// Load the table for `scope` (source name + absolute path); empty if
    /// absent or unreadable. Records its use (for `cache gc`).
    pub fn load_stats(&self, scope: &str) -> StatTable {
        self.files.read_used(&self.stat_path(scope)).and_then(StatTable::decode).unwrap_or_default()
    }

    /// Replace the table for `scope` with `entries` (ascending paths), whose
    /// stats were taken after `taken_ns` ([`now_ns`] before the walk).
    pub fn save_stats<'a>(
        &self,
        scope: &str,
        taken_ns: i128,
        entries: impl ExactSizeIterator<Item = (&'a str, StatKey, Sha256)>,
    ) -> Result<(), CacheError> {
        self.files.write_atomic(&self.stat_path(scope), &StatTable::encode(entries, taken_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_merge_and_racy_rule() {
        let k = StatKey { size: 3, mtime_ns: 1_000, ctime_ns: 1_000, ino: 7 };
        let d = Sha256::of(b"abc");
        let rows = [("a.json", k, d), ("b/c.json", k, d), ("d.json", k, d)];
        let t = StatTable::decode(StatTable::encode(rows.iter().copied(), 1_000 + RACY_NS + 1)).unwrap();
        let mut c = t.cursor();
        assert_eq!(c.seek("a.json", &k), Some(d));
        assert_eq!(c.seek("b/b.json", &k), None, "absent path");
        assert_eq!(c.seek("b/c.json", &StatKey { size: 4, ..k }), None, "changed size");
        assert_eq!(c.seek("d.json", &k), Some(d));
        assert_eq!(c.seek("e.json", &k), None);
        let racy = StatTable::decode(StatTable::encode(rows.iter().copied(), 1_000 + RACY_NS)).unwrap();
        assert_eq!(racy.cursor().seek("a.json", &k), None, "modified within the racy window: re-read");
        assert!(StatTable::decode(b"garbage".to_vec()).is_none());
        let unsorted = [("b", k, d), ("a", k, d)];
        assert!(StatTable::decode(StatTable::encode(unsorted.iter().copied(), 0)).is_none());
    }
}
