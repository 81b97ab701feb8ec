//! Memos: small local files that remember a derived fact under a key and
//! name the blobs it needs, so `cache gc` keeps those blobs exactly as long
//! as the memo (see [`super::gc`]). Used for a source's tree digest and
//! archive index (area [`Area::Stat`]: its packs) and for cached gzip
//! pieces of the DB archives (area [`Area::Gzip`], see [`GzipPieces`]).
//!
//! File `<area>/ab/<b3(area ‖ key)>`:
//!
//! ```text
//! "ECMEMO1\n" | key_len u32 | key | n u32 | n × blob digest [32] | data_len u64 | data
//! ```
//!
//! A memo is loaded only if it is whole (lengths match the file) and its
//! stored key equals the key asked for (a misfiled or torn memo is a miss); reading one records its use. Memos
//! are local: a shared store never holds them.

use super::{fanout, Cache, CacheError};
use crate::digest::{Digest, FieldHasher};

const MAGIC: &[u8; 8] = b"ECMEMO1\n";

/// A local area holding memos.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// Facts about this machine's source files (`stat/`).
    Stat,
    /// Compressed gzip pieces of DB archives (`gzip/`).
    Gzip,
}

impl Area {
    pub(crate) fn dir(self) -> &'static str {
        match self {
            Area::Stat => "stat",
            Area::Gzip => "gzip",
        }
    }
}

/// A remembered fact and the blobs it needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memo {
    pub blobs: Vec<Digest>,
    pub data: Vec<u8>,
}

impl Memo {
    fn encode(&self, key: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(24 + key.len() + 32 * self.blobs.len() + self.data.len());
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&(key.len() as u32).to_le_bytes());
        b.extend_from_slice(key);
        b.extend_from_slice(&(self.blobs.len() as u32).to_le_bytes());
        for d in &self.blobs {
            b.extend_from_slice(&d.0);
        }
        b.extend_from_slice(&(self.data.len() as u64).to_le_bytes());
        b.extend_from_slice(&self.data);
        b
    }

    /// (stored key, memo); `None` if the bytes are not a whole memo.
    pub(crate) fn decode(b: &[u8]) -> Option<(&[u8], Memo)> {
        let rest = b.strip_prefix(MAGIC)?;
        let (len, rest) = rest.split_at_checked(4)?;
        let (key, rest) = rest.split_at_checked(u32::from_le_bytes(len.try_into().ok()?) as usize)?;
        let (n, mut rest) = rest.split_at_checked(4)?;
        let n = u32::from_le_bytes(n.try_into().ok()?) as usize;
        let mut blobs = Vec::with_capacity(n.min(rest.len() / 32));
        for _ in 0..n {
            let (d, r) = rest.split_at_checked(32)?;
            blobs.push(Digest(d.try_into().ok()?));
            rest = r;
        }
        let (len, data) = rest.split_at_checked(8)?;
        if u64::from_le_bytes(len.try_into().ok()?) != data.len() as u64 {
            return None;
        }
        Some((key, Memo { blobs, data: data.to_vec() }))
    }
}

impl Cache {
    fn memo_path(&self, area: Area, key: &[u8]) -> std::path::PathBuf {
        let h = FieldHasher::new("memo").field(area.dir().as_bytes()).field(key).finish();
        fanout(&self.files.root.join(area.dir()), &h.hex())
    }

    /// The memo stored under `key`, if any; records its use.
    pub fn load_memo(&self, area: Area, key: &[u8]) -> Option<Memo> {
        let b = self.files.read_used(&self.memo_path(area, key))?;
        let (stored, memo) = Memo::decode(&b)?;
        (stored == key).then_some(memo)
    }

    /// Store a memo under `key`; every blob it names must already be in the store.
    pub fn save_memo(&self, area: Area, key: &[u8], memo: &Memo) -> Result<(), CacheError> {
        self.files.write_atomic(&self.memo_path(area, key), &memo.encode(key))
    }

    /// The gzip piece cache of the DB archives, on this cache.
    pub fn gzip_pieces(&self) -> GzipPieces<'_> {
        GzipPieces(self)
    }
}

/// Compressed gzip pieces kept in the CAS as `key ‖ piece` (so `cache gc`
/// trims them like any blob), found through a memo in `gzip/`. A missing,
/// corrupt or misfiled piece (its key prefix differs) is compressed again:
/// the archive never depends on it.
pub struct GzipPieces<'a>(&'a Cache);

impl crate::formats::gzip::PieceCache for GzipPieces<'_> {
    fn get(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        let memo = self.0.load_memo(Area::Gzip, key)?;
        let blob = self.0.read(memo.blobs.first()?).ok()?;
        // the blob starts with its key: a pointer to the wrong blob is never used
        blob.strip_prefix(key.as_slice()).map(<[u8]>::to_vec)
    }

    fn put(&self, key: &[u8; 32], piece: &[u8]) {
        let mut blob = Vec::with_capacity(32 + piece.len());
        blob.extend_from_slice(key);
        blob.extend_from_slice(piece);
        if let Ok(d) = self.0.put(&blob) {
            let _ = self.0.save_memo(Area::Gzip, key, &Memo { blobs: vec![d], data: Vec::new() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_roundtrip_and_key_check() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let d = cache.put(b"pack").unwrap();
        let m = Memo { blobs: vec![d], data: b"index".to_vec() };
        cache.save_memo(Area::Stat, b"k", &m).unwrap();
        assert_eq!(cache.load_memo(Area::Stat, b"k"), Some(m.clone()));
        assert_eq!(cache.load_memo(Area::Stat, b"other"), None);
        assert_eq!(cache.load_memo(Area::Gzip, b"k"), None, "areas are apart");
        let enc = m.encode(b"k");
        for cut in [1, 6, enc.len() - 20] {
            assert!(Memo::decode(&enc[..enc.len() - cut]).is_none(), "torn at -{cut}");
        }
    }
}
