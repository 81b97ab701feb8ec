//! `cache stats`, `cache gc --max-size`, `cache verify`.
//!
//! gc takes the cache's exclusive lock (no build runs meanwhile), empties
//! `tmp/`, then, while the cache is over the limit, drops the least
//! recently committed action-cache entries and every blob no kept entry
//! names. Dropping an entry is always safe: the next build misses and
//! rebuilds. verify re-hashes every blob and parses every entry.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::cache::action::AcEntry;
use crate::cache::{Cache, CacheError};
use crate::digest::Digest;

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
}

pub fn stats(root: &Path) -> Result<Stats, CacheError> {
    let cache = Cache::open(root)?;
    let blobs = cache.blobs();
    Ok(Stats {
        path: root.display().to_string(),
        blobs: blobs.len(),
        blob_bytes: blobs.iter().map(|b| b.2).sum(),
        action_entries: cache.ac_entries().len(),
        tmp_files: fs::read_dir(cache.tmp_dir()).map(|r| r.count()).unwrap_or(0),
    })
}

/// Parse `500M`, `2G`, `1.5GiB`, `1024` (bytes; K/M/G/T are powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("bad size unit in {s:?} (use K, M, G or T)")),
    };
    Ok((n * mult as f64) as u64)
}

#[derive(Debug, Serialize)]
pub struct GcReport {
    #[serde(rename = "bytesBefore")]
    pub bytes_before: u64,
    #[serde(rename = "bytesAfter")]
    pub bytes_after: u64,
    #[serde(rename = "entriesRemoved")]
    pub entries_removed: usize,
    #[serde(rename = "blobsRemoved")]
    pub blobs_removed: usize,
}

pub fn gc(root: &Path, max: u64) -> Result<GcReport, CacheError> {
    let cache = Cache::open_exclusive(root)?;
    if let Ok(read) = fs::read_dir(cache.tmp_dir()) {
        for e in read.filter_map(|e| e.ok()) {
            let p = e.path();
            let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
        }
    }
    let blobs = cache.blobs();
    let before: u64 = blobs.iter().map(|b| b.2).sum();
    let size_of: std::collections::HashMap<String, u64> = blobs.iter().map(|b| (b.0.clone(), b.2)).collect();
    let mut entries: Vec<(std::time::SystemTime, std::path::PathBuf, Option<AcEntry>)> = cache
        .ac_entries()
        .into_iter()
        .map(|p| {
            let t = fs::metadata(&p).and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
            let e = fs::read(&p).ok().and_then(|b| serde_json::from_slice(&b).ok());
            (t, p, e)
        })
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.0)); // newest first
    let mut keep_blobs: HashSet<String> = HashSet::new();
    let mut kept_bytes = 0u64;
    let mut removed = 0;
    for (_, path, entry) in &entries {
        let Some(entry) = entry else {
            let _ = fs::remove_file(path);
            removed += 1;
            continue;
        };
        let new: BTreeSet<String> =
            entry.outputs.values().map(|o| o.digest.hex()).filter(|h| !keep_blobs.contains(h)).collect();
        let add: u64 = new.iter().map(|h| size_of.get(h).copied().unwrap_or(0)).sum();
        if kept_bytes + add <= max {
            kept_bytes += add;
            keep_blobs.extend(new);
        } else {
            let _ = fs::remove_file(path);
            removed += 1;
        }
    }
    let mut blobs_removed = 0;
    let mut after = 0;
    for (name, path, size, _) in &blobs {
        let keep = if keep_blobs.contains(name) || before <= max {
            true
        } else if kept_bytes + size <= max {
            // blobs no entry names (archive packs) stay while they fit
            kept_bytes += size;
            true
        } else {
            false
        };
        if keep {
            after += size;
        } else {
            let _ = fs::remove_file(path);
            blobs_removed += 1;
        }
    }
    Ok(GcReport { bytes_before: before, bytes_after: after, entries_removed: removed, blobs_removed })
}

#[derive(Debug, Serialize)]
pub struct FsckReport {
    pub blobs: usize,
    pub entries: usize,
    pub problems: Vec<String>,
}

/// Re-hash every blob and parse every entry. Reports, deletes nothing.
pub fn verify(root: &Path) -> Result<FsckReport, CacheError> {
    let cache = Cache::open(root)?;
    let mut problems = Vec::new();
    let blobs = cache.blobs();
    for (name, path, _, _) in &blobs {
        let ok = fs::read(path).map(|b| Digest::of(&b).hex() == *name).unwrap_or(false);
        if !ok {
            problems.push(format!("{}: bytes do not match the blob's name", path.display()));
        }
    }
    let entries = cache.ac_entries();
    for path in &entries {
        let parsed = fs::read(path).ok().and_then(|b| serde_json::from_slice::<AcEntry>(&b).ok());
        match parsed {
            Some(e) if path.file_name().is_some_and(|n| n.to_string_lossy() == e.key.hex()) => {}
            _ => problems.push(format!("{}: unreadable or misnamed action-cache entry", path.display())),
        }
    }
    Ok(FsckReport { blobs: blobs.len(), entries: entries.len(), problems })
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
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5X").is_err());
    }
}
