//! Stat cache: lets a build skip reading input files that did not change.
//! Local only (it describes this machine's files); loading a table records
//! its use for `cache gc`. Other facts about a source (its tree digest, an
//! archive's index) are memos in the same area ([`super::memo`]).
//!
//! One file per source, `stat/<b3(scope)>.bin`, a compact binary table
//! sorted by path, so a sorted directory listing is matched against it in
//! one merge pass with no hash map (fast and small at 300k entries). A
//! build that re-read a few files of an unchanged set of paths writes only
//! those entries, to the overlay `stat/<b3(scope)>.overlay.bin` (same
//! format), instead of rewriting the whole table (tens of MB at 300k
//! files); an overlay entry takes precedence over the table's. Every entry
//! of either file is an independent fact (this stat had this digest,
//! observed with a listing taken then), so a crash between writing one and
//! the other, or `cache gc` evicting one, costs only re-reads:
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

/// One file's entries: the raw bytes, walked in order.
#[derive(Default)]
struct Table {
    taken_ns: i128,
    count: usize,
    bytes: Vec<u8>,
}

/// A source's loaded stat cache: the table and its overlay.
#[derive(Default)]
pub struct StatTable {
    base: Table,
    overlay: Table,
}

/// A forward cursor over one file, for merging with a sorted listing.
struct TableCursor<'a> {
    table: &'a Table,
    pos: usize,
    left: usize,
}

/// What the stat cache knows of one listed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The remembered digest, when the stat is unchanged (and not racy).
    pub digest: Option<Sha256>,
    /// Whether the table (not the overlay) holds exactly this: such
    /// entries need not be written again.
    pub in_table: bool,
}

/// A forward cursor over a [`StatTable`] (table and overlay together).
pub struct Cursor<'a> {
    base: TableCursor<'a>,
    overlay: TableCursor<'a>,
    absent: usize,
}

impl Cursor<'_> {
    /// The remembered digest of `path` if its stat is unchanged. Calls must
    /// come in ascending path order.
    pub fn seek(&mut self, path: &str, key: &StatKey) -> Option<Sha256> {
        self.lookup(path, key).digest
    }

    /// What is known of `path` (ascending order, as [`Cursor::seek`]).
    pub fn lookup(&mut self, path: &str, key: &StatKey) -> Lookup {
        let over = self.overlay.find(path);
        let base = self.base.find(path);
        match (over, base) {
            (Some(fresh), _) => Lookup { digest: fresh(key), in_table: false },
            (None, Some(fresh)) => {
                let digest = fresh(key);
                Lookup { digest, in_table: digest.is_some() }
            }
            (None, None) => {
                self.absent += 1;
                Lookup { digest: None, in_table: false }
            }
        }
    }

    /// How many paths looked up so far the cache had never seen.
    pub fn absent(&self) -> usize {
        self.absent
    }
}

impl<'a> TableCursor<'a> {
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

    /// The entry of `path`, as a check of a stat against it (the digest
    /// when the stat is the same and was not racy); None if absent.
    /// Calls must come in ascending path order.
    fn find(&mut self, path: &str) -> Option<impl Fn(&StatKey) -> Option<Sha256> + 'a> {
        while let Some((p, k, d, next)) = self.entry() {
            match p.cmp(path.as_bytes()) {
                std::cmp::Ordering::Less => {
                    self.pos = next;
                    self.left -= 1;
                }
                std::cmp::Ordering::Equal => {
                    self.pos = next;
                    self.left -= 1;
                    let taken = self.table.taken_ns;
                    return Some(move |key: &StatKey| {
                        (k == *key && taken - key.mtime_ns > RACY_NS).then_some(d)
                    });
                }
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
}

impl StatTable {
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor { base: self.base.cursor(), overlay: self.overlay.cursor(), absent: 0 }
    }

    /// Paths in the table (the overlay only ever holds some of them).
    pub fn len(&self) -> usize {
        self.base.count
    }

    pub fn is_empty(&self) -> bool {
        self.base.count == 0
    }

    /// Entries must be in ascending path order.
    pub fn encode<'a>(
        entries: impl ExactSizeIterator<Item = (&'a str, StatKey, Sha256)>,
        taken_ns: i128,
    ) -> Vec<u8> {
        Table::encode(entries, taken_ns)
    }

    /// A table without overlay, from [`StatTable::encode`]'s bytes.
    pub fn decode(b: Vec<u8>) -> Option<StatTable> {
        Some(StatTable { base: Table::decode(b)?, overlay: Table::default() })
    }
}

impl Table {
    fn cursor(&self) -> TableCursor<'_> {
        TableCursor { table: self, pos: 32.min(self.bytes.len()), left: self.count }
    }

    fn encode<'a>(
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

    fn decode(b: Vec<u8>) -> Option<Table> {
        if b.get(..8)? != MAGIC {
            return None;
        }
        let taken_ns = i128::from_le_bytes(b.get(8..24)?.try_into().ok()?);
        let count = u64::from_le_bytes(b.get(24..32)?.try_into().ok()?) as usize;
        let t = Table { taken_ns, count, bytes: b };
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

    fn overlay_path(&self, scope: &str) -> PathBuf {
        self.stat_path(scope).with_extension("overlay.bin")
    }

    /// Load the table for `scope` (source name + absolute path) and its
    /// overlay; empty if absent or unreadable. Records their use (for `cache gc`).
    pub fn load_stats(&self, scope: &str) -> StatTable {
        let load = |p: PathBuf| self.files.read_used(&p).and_then(Table::decode).unwrap_or_default();
        StatTable { base: load(self.stat_path(scope)), overlay: load(self.overlay_path(scope)) }
    }

    /// Record `entries` (ascending paths; stats taken after `taken_ns`) as
    /// the overlay of the table for `scope`, replacing the previous overlay:
    /// for when few entries differ from the table and its paths are the
    /// listing's (see the module doc).
    pub fn save_stat_overlay<'a>(
        &self,
        scope: &str,
        taken_ns: i128,
        entries: impl ExactSizeIterator<Item = (&'a str, StatKey, Sha256)>,
    ) -> Result<(), CacheError> {
        self.files.write_atomic(&self.overlay_path(scope), &Table::encode(entries, taken_ns))
    }

    /// Replace the table for `scope` with `entries` (ascending paths), whose
    /// stats were taken after `taken_ns` ([`now_ns`] before the walk).
    pub fn save_stats<'a>(
        &self,
        scope: &str,
        taken_ns: i128,
        entries: impl ExactSizeIterator<Item = (&'a str, StatKey, Sha256)>,
    ) -> Result<(), CacheError> {
        self.files.write_atomic(&self.stat_path(scope), &Table::encode(entries, taken_ns))?;
        // the table now holds every entry; a stale overlay would only cost re-reads
        match fs::remove_file(self.overlay_path(scope)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(CacheError::Io { path: self.overlay_path(scope), source: e })
            }
            _ => Ok(()),
        }
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

    #[test]
    fn overlay_entries_take_precedence_until_the_table_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let old = StatKey { size: 3, mtime_ns: 1_000, ctime_ns: 1_000, ino: 7 };
        let new = StatKey { size: 4, mtime_ns: 2_000, ctime_ns: 2_000, ino: 7 };
        let (d1, d2) = (Sha256::of(b"one"), Sha256::of(b"two"));
        let taken = 10 * RACY_NS;
        let rows = [("a", old, d1), ("b", old, d1), ("c", old, d1)];
        cache.save_stats("s", taken, rows.iter().copied()).unwrap();
        cache.save_stat_overlay("s", taken, [("b", new, d2)].into_iter()).unwrap();
        let t = cache.load_stats("s");
        assert_eq!(t.len(), 3, "the overlay adds no path");
        let mut c = t.cursor();
        assert_eq!(c.lookup("a", &old), Lookup { digest: Some(d1), in_table: true });
        assert_eq!(c.lookup("b", &new), Lookup { digest: Some(d2), in_table: false });
        assert_eq!(c.lookup("c", &new), Lookup { digest: None, in_table: false }, "changed since");
        assert_eq!(c.lookup("d", &old), Lookup { digest: None, in_table: false });
        assert_eq!(c.absent(), 1);
        // the table's entry for b is shadowed: its old stat is not trusted
        assert_eq!(t.cursor().seek("b", &old), None);
        // a full rewrite drops the overlay
        cache.save_stats("s", taken, rows.iter().copied()).unwrap();
        assert_eq!(cache.load_stats("s").cursor().seek("b", &old), Some(d1));
    }
}
