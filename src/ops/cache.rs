//! `cache stats`, `cache gc [--max-size]`, `cache verify`: thin wrappers
//! over the cache's own maintenance ([`crate::cache::gc`], which documents
//! last-use eviction and what each area keeps).
//!
//! gc's limit is `--max-size`, else `[workspace] cache-max-size`, else
//! [`DEFAULT_MAX_SIZE`] (10 GiB). verify re-hashes every blob, parses every
//! action-cache entry and reports an entry naming a missing blob.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::cache::gc::AreaUsage;
pub use crate::cache::gc::DEFAULT_MAX_SIZE;
use crate::cache::{Cache, CacheError};

#[derive(Debug, Serialize)]
pub struct Stats {
    pub path: String,
    pub blobs: usize,
    #[serde(rename = "blobBytes")]
    pub blob_bytes: u64,
    #[serde(rename = "actionEntries")]
    pub action_entries: usize,
    #[serde(rename = "tmpFiles")]
    pub tmp_files: usize,
    /// Bytes of the reusable scratch files (outside the limit; gc deletes them).
    #[serde(rename = "scratchBytes")]
    pub scratch_bytes: u64,
    /// Bytes of every area `cache gc` limits.
    pub bytes: u64,
    pub areas: BTreeMap<&'static str, AreaUsage>,
}

pub fn stats(root: &Path) -> Result<Stats, CacheError> {
    let cache = Cache::open(root)?;
    let u = cache.usage();
    let area = |a: &str| u.areas.get(a).copied().unwrap_or_default();
    Ok(Stats {
        path: root.display().to_string(),
        blobs: area("cas").files,
        blob_bytes: area("cas").bytes,
        action_entries: area("ac").files,
        tmp_files: u.tmp_files,
        scratch_bytes: u.scratch_bytes,
        bytes: u.bytes(),
        areas: u.areas.clone(),
    })
}

/// Parse `500M`, `2G`, `1.5GiB`, `1024` (bytes; K/M/G/T are powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    crate::bounded::parse_size(s)
}

#[derive(Debug, Serialize)]
pub struct GcReport {
    #[serde(rename = "maxSize")]
    pub max_size: u64,
    #[serde(rename = "bytesBefore")]
    pub bytes_before: u64,
    #[serde(rename = "bytesAfter")]
    pub bytes_after: u64,
    #[serde(rename = "entriesRemoved")]
    pub entries_removed: usize,
    #[serde(rename = "blobsRemoved")]
    pub blobs_removed: usize,
    /// area (`ac`, `cas`, `gzip`, `stat`, `steps`, `scratch`) → files removed
    pub removed: BTreeMap<&'static str, usize>,
}

pub fn gc(root: &Path, max: u64) -> Result<GcReport, CacheError> {
    let cache = Cache::open_exclusive(root)?;
    let o = cache.gc(max)?;
    let n = |a: &str| o.removed.get(a).copied().unwrap_or(0);
    Ok(GcReport {
        max_size: max,
        bytes_before: o.bytes_before,
        bytes_after: o.bytes_after,
        entries_removed: n("ac"),
        blobs_removed: n("cas"),
        removed: o.removed,
    })
}

#[derive(Debug, Serialize)]
pub struct FsckReport {
    pub blobs: usize,
    pub entries: usize,
    pub problems: Vec<String>,
}

/// Re-hash every blob, parse every entry, check the blobs entries name.
/// Reports, deletes nothing.
pub fn verify(root: &Path) -> Result<FsckReport, CacheError> {
    let cache = Cache::open(root)?;
    let (blobs, entries, problems) = cache.check();
    Ok(FsckReport { blobs, entries, problems })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("2K").unwrap(), 2048);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("10MB").unwrap(), 10 << 20);
        assert_eq!(parse_size("500 MB").unwrap(), 500 << 20);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").is_err());
    }
}
