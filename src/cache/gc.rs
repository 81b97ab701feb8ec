//! Maintenance of the local cache folder: sizes ([`Cache::usage`]),
//! last-use eviction ([`Cache::gc`]) and the consistency check
//! ([`Cache::check`]). This is the one place besides the writers that
//! knows the layout; a shared remote store evicts by its own policy.
//!
//! gc, under the exclusive lock (no build runs meanwhile):
//! 1. empties `tmp/` and `scratch/` and deletes unreadable action-cache
//!    entries;
//! 2. if the managed areas (`cas/`, `ac/`, `gzip/`, `stat/`, `steps/`) fit
//!    in the limit, stops there;
//! 3. else keeps *units* newest last use first while they fit: an
//!    action-cache entry with the blobs it names, a memo with its blobs, a
//!    stat table, a blob no unit names (by its write time). A unit that
//!    does not fit is dropped, and so is an entry naming a missing blob
//!    (it could never hit). A blob is kept iff a kept unit names it, so a
//!    kept entry never points at an evicted output;
//! 4. trims `steps/`: a step record stays while its step has a kept entry
//!    or its last use (its own write, or a hit of an entry of its step) is
//!    within [`RECORD_DAYS`] of the cache's newest use. Records are a few
//!    hundred bytes a step; they let the next build name *why* a step
//!    re-runs (`cache-entry-missing` after an eviction), so they are
//!    reserved before the limit is applied to the rest.
//!
//! Dropping a unit is always safe: the next build misses and rebuilds.
//! Published exports are outside the cache and never touched. Run records
//! (`runs/`) are not gc's to trim.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::action::AcEntry;
use super::memo::Memo;
use super::{Cache, CacheError};
use crate::digest::Digest;

/// `cache gc` without `--max-size` or `[workspace] cache-max-size`.
pub const DEFAULT_MAX_SIZE: u64 = 10 << 30;

/// Step records whose step was used this many days before the cache's
/// newest use (and has no kept entry) are trimmed.
pub const RECORD_DAYS: u64 = 30;

const AREAS: [&str; 5] = ["cas", "ac", "gzip", "stat", "steps"];

/// Bytes and files of one area.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct AreaUsage {
    pub files: usize,
    pub bytes: u64,
}

/// What the cache holds, by area.
#[derive(Debug, Serialize)]
pub struct Usage {
    pub areas: BTreeMap<&'static str, AreaUsage>,
    #[serde(rename = "tmpFiles")]
    pub tmp_files: usize,
    /// Bytes of the reusable scratch files (not limited; gc deletes them).
    #[serde(rename = "scratchBytes")]
    pub scratch_bytes: u64,
}

impl Usage {
    /// Bytes of the areas gc manages (what `--max-size` limits).
    pub fn bytes(&self) -> u64 {
        self.areas.values().map(|a| a.bytes).sum()
    }
}

/// What one gc removed, by area.
#[derive(Debug, Default, Serialize)]
pub struct GcOutcome {
    #[serde(rename = "bytesBefore")]
    pub bytes_before: u64,
    #[serde(rename = "bytesAfter")]
    pub bytes_after: u64,
    /// area → files removed
    pub removed: BTreeMap<&'static str, usize>,
}

struct FileInfo {
    path: PathBuf,
    bytes: u64,
    mtime: SystemTime,
}

fn files_under(dir: &Path) -> Vec<FileInfo> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let md = e.metadata().ok()?;
            Some(FileInfo {
                path: e.path().to_path_buf(),
                bytes: md.len(),
                mtime: md.modified().unwrap_or(UNIX_EPOCH),
            })
        })
        .collect()
}

/// A file gc keeps or drops as a whole, with the blobs it needs.
struct Unit {
    area: &'static str,
    file: FileInfo,
    blobs: Vec<String>,
    /// an entry naming a missing blob: never kept
    dead: bool,
    /// the step of an action-cache entry
    step: Option<String>,
}

impl Cache {
    pub(crate) fn area_dir(&self, area: &str) -> PathBuf {
        self.files.root.join(area)
    }

    /// Sizes and counts of every area.
    pub fn usage(&self) -> Usage {
        let areas = AREAS
            .iter()
            .map(|a| {
                let files = files_under(&self.area_dir(a));
                (*a, AreaUsage { files: files.len(), bytes: files.iter().map(|f| f.bytes).sum() })
            })
            .collect();
        let tmp_files = fs::read_dir(self.files.tmp()).map(|r| r.count()).unwrap_or(0);
        Usage { areas, tmp_files, scratch_bytes: self.scratch_bytes() }
    }

    /// Trim the cache to at most `max` bytes, least recently used first
    /// (see the module doc). Needs [`Cache::open_exclusive`].
    pub fn gc(&self, max: u64) -> Result<GcOutcome, CacheError> {
        let mut out = GcOutcome::default();
        let removed = |out: &mut GcOutcome, area: &'static str, path: &Path| {
            if fs::remove_file(path).is_ok() {
                *out.removed.entry(area).or_default() += 1;
            }
        };
        if let Ok(read) = fs::read_dir(self.files.tmp()) {
            for e in read.filter_map(|e| e.ok()) {
                let p = e.path();
                let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            }
        }
        let scratch = self.clear_scratch();
        if scratch > 0 {
            out.removed.insert("scratch", scratch);
        }
        out.bytes_before = self.usage().bytes();
        let blobs: HashMap<String, FileInfo> = files_under(&self.area_dir("cas"))
            .into_iter()
            .map(|f| (f.path.file_name().unwrap_or_default().to_string_lossy().into_owned(), f))
            .collect();
        // every unit, and the newest use of each step's entries
        let mut units = Vec::new();
        let mut step_use: HashMap<String, SystemTime> = HashMap::new();
        for file in files_under(&self.area_dir("ac")) {
            let parsed = fs::read(&file.path).ok().and_then(|b| serde_json::from_slice::<AcEntry>(&b).ok());
            let Some(entry) = parsed.filter(|e| file.path.file_name().is_some_and(|n| *n == *e.key.hex()))
            else {
                removed(&mut out, "ac", &file.path);
                continue;
            };
            let t = step_use.entry(entry.step.clone()).or_insert(file.mtime);
            *t = (*t).max(file.mtime);
            let dead =
                entry.outputs.values().any(|o| blobs.get(&o.digest.hex()).is_none_or(|b| b.bytes != o.size));
            let names = entry.outputs.values().map(|o| o.digest.hex()).collect();
            units.push(Unit { area: "ac", file, blobs: names, dead, step: Some(entry.step) });
        }
        for area in ["gzip", "stat"] {
            for file in files_under(&self.area_dir(area)) {
                let names: Vec<String> = fs::read(&file.path)
                    .ok()
                    .and_then(|b| Memo::decode(&b).map(|(_, m)| m.blobs.iter().map(Digest::hex).collect()))
                    .unwrap_or_default();
                // a memo whose blob is gone only costs a recomputation: drop it
                let dead = names.iter().any(|h| !blobs.contains_key(h));
                units.push(Unit { area, file, blobs: names, dead, step: None });
            }
        }
        let named: HashSet<&String> = units.iter().flat_map(|u| &u.blobs).collect();
        let orphans: Vec<Unit> = blobs
            .iter()
            .filter(|(name, _)| !named.contains(name))
            .map(|(_, f)| Unit {
                area: "cas",
                file: FileInfo { path: f.path.clone(), bytes: 0, mtime: f.mtime },
                blobs: vec![f.path.file_name().unwrap_or_default().to_string_lossy().into_owned()],
                dead: false,
                step: None,
            })
            .collect();
        units.extend(orphans);
        // step records: last use = own write or a hit of an entry of the step
        let newest = units.iter().map(|u| u.file.mtime).chain(step_use.values().copied()).max();
        let horizon = newest.map(|t| t - Duration::from_secs(RECORD_DAYS * 86_400));
        let records: Vec<(FileInfo, SystemTime)> = {
            let by_path: HashMap<PathBuf, SystemTime> = step_use
                .iter()
                .map(|(step, t)| (super::action::record_path(&self.files.root, step), *t))
                .collect();
            files_under(&self.area_dir("steps"))
                .into_iter()
                .map(|f| {
                    let t = by_path.get(&f.path).map_or(f.mtime, |t| (*t).max(f.mtime));
                    (f, t)
                })
                .collect()
        };
        let recent = |t: &SystemTime| horizon.is_none_or(|h| *t >= h);
        let reserved: u64 = records.iter().filter(|(_, t)| recent(t)).map(|(f, _)| f.bytes).sum();
        let over = out.bytes_before > max;
        let mut kept_blobs: HashSet<String> = HashSet::new();
        let mut kept_steps: HashSet<PathBuf> = HashSet::new();
        if over {
            units.sort_by(|a, b| b.file.mtime.cmp(&a.file.mtime).then_with(|| a.file.path.cmp(&b.file.path)));
            let mut used = reserved;
            for u in &units {
                // a set: one entry may name a blob twice (a DB's bundle is its OCI layer too)
                let new: HashSet<&String> = u.blobs.iter().filter(|h| !kept_blobs.contains(*h)).collect();
                let cost =
                    u.file.bytes + new.iter().map(|h| blobs.get(*h).map_or(0, |b| b.bytes)).sum::<u64>();
                if !u.dead && used + cost <= max {
                    used += cost;
                    kept_blobs.extend(new.into_iter().cloned());
                    if let Some(step) = &u.step {
                        kept_steps.insert(super::action::record_path(&self.files.root, step));
                    }
                } else if u.area != "cas" {
                    removed(&mut out, u.area, &u.file.path);
                }
            }
            for (name, f) in &blobs {
                if !kept_blobs.contains(name) {
                    removed(&mut out, "cas", &f.path);
                }
            }
        } else {
            for u in &units {
                if u.dead {
                    removed(&mut out, u.area, &u.file.path);
                } else if let Some(step) = &u.step {
                    kept_steps.insert(super::action::record_path(&self.files.root, step));
                }
            }
        }
        for (f, t) in &records {
            if !recent(t) && !kept_steps.contains(&f.path) {
                removed(&mut out, "steps", &f.path);
            }
        }
        out.bytes_after = self.usage().bytes();
        Ok(out)
    }

    /// Re-hash every blob, parse every entry and check that the blobs it
    /// names are present with their sizes. Deletes nothing; returns the
    /// problems found (names escaped for display) and the counts.
    pub fn check(&self) -> (usize, usize, Vec<String>) {
        let mut problems = Vec::new();
        let blobs = files_under(&self.area_dir("cas"));
        let mut sizes: HashMap<String, u64> = HashMap::new();
        for f in &blobs {
            let name = f.path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let ok = fs::read(&f.path).map(|b| Digest::of(&b).hex() == name).unwrap_or(false);
            if ok {
                sizes.insert(name, f.bytes);
            } else {
                problems.push(format!("{}: bytes do not match the blob's name", crate::shown::path(&f.path)));
            }
        }
        let entries = files_under(&self.area_dir("ac"));
        for f in &entries {
            let parsed = fs::read(&f.path).ok().and_then(|b| serde_json::from_slice::<AcEntry>(&b).ok());
            match parsed {
                Some(e) if f.path.file_name().is_some_and(|n| *n == *e.key.hex()) => {
                    for (output, o) in &e.outputs {
                        let hex = o.digest.hex();
                        let bad = match sizes.get(&hex) {
                            Some(size) if *size == o.size => continue,
                            Some(_) => "has another size",
                            None if blobs.iter().any(|b| b.path.ends_with(&hex)) => "is corrupt",
                            None => "is missing",
                        };
                        problems.push(format!(
                            "{}: action-cache entry of step {} names blob {hex} (output {}) which {bad}",
                            crate::shown::path(&f.path),
                            crate::shown::name(&e.step),
                            crate::shown::name(output),
                        ));
                    }
                }
                _ => problems.push(format!(
                    "{}: unreadable or misnamed action-cache entry",
                    crate::shown::path(&f.path)
                )),
            }
        }
        (blobs.len(), entries.len(), problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::action::OutputRef;
    use crate::cache::memo::{Area, Memo};

    fn age(path: &Path, secs: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs);
        fs::File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn kept_units_keep_their_blobs_and_the_least_recently_used_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let blob = |b: &[u8]| (cache.put(b).unwrap(), b.len() as u64);
        let (layer, n) = blob(&[1u8; 1000]);
        let (pack, _) = blob(&[2u8; 1000]);
        let (old, o) = blob(&[3u8; 1000]);
        let (orphan, _) = blob(&[4u8; 1000]);
        // an entry naming one blob twice, a memo naming a pack, an older entry
        let out = |d, size| OutputRef { digest: d, size };
        let outputs = BTreeMap::from([("bundle".into(), out(layer, n)), ("layer".into(), out(layer, n))]);
        let new_key = Digest::of(b"new");
        cache.commit(&AcEntry { key: new_key, step: "new".into(), outputs }).unwrap();
        cache.save_memo(Area::Stat, b"idx", &Memo { blobs: vec![pack], data: b"i".to_vec() }).unwrap();
        let outputs = BTreeMap::from([("o".into(), out(old, o))]);
        let old_key = Digest::of(b"old");
        cache.commit(&AcEntry { key: old_key, step: "old".into(), outputs }).unwrap();
        let old_entry = dir.path().join("ac").join(&old_key.hex()[..2]).join(old_key.hex());
        age(&old_entry, 3600);
        for d in [&orphan, &old] {
            age(&dir.path().join("cas").join(&d.hex()[..2]).join(d.hex()), 7200);
        }
        drop(cache);
        let cache = Cache::open_exclusive(dir.path()).unwrap();
        let u = cache.usage();
        let small = u.bytes() - u.areas["cas"].bytes + 2000; // everything but two blobs
        let r = cache.gc(small).unwrap();
        assert!(r.bytes_after <= small, "{r:?}");
        assert_eq!(r.removed.get("ac"), Some(&1), "the least recently used entry goes: {r:?}");
        assert!(!old_entry.exists());
        assert!(cache.contains_blob(&layer) && cache.contains_blob(&pack), "named by kept units");
        assert!(!cache.contains_blob(&old) && !cache.contains_blob(&orphan));
        assert!(matches!(cache.lookup(&new_key), crate::cache::action::Lookup::Hit(_)));
        assert!(cache.load_memo(Area::Stat, b"idx").is_some());
        assert!(cache.check().2.is_empty(), "no kept entry names an evicted blob");
    }
}
