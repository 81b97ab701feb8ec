//! Action-cache entries (`ac/ab/<step key>`) and step records
//! (`steps/<b3(step id)>.json`).
//!
//! An entry maps a step key to the digests and sizes of the step's named
//! outputs. It is written after the outputs are in the CAS. A lookup is a
//! hit only if every named blob is present with its size; content is
//! verified later, on use.
//!
//! A lookup hit records the use: the entry file's mtime moves to now, at
//! most once per run (see [`super::Files::mark_used`]); `cache gc` evicts
//! by it.
//!
//! A step record remembers, per step id, what went into its last key, so a
//! miss can say *why* (see `exec::reason`). Records are local: they
//! describe this machine's history, not shareable results.

use std::collections::BTreeMap;
use std::fs;

use serde::{Deserialize, Serialize};

use super::cas::FsStore;
use super::store::ActionCache;
use super::{fanout, Cache, CacheError};
use crate::digest::{Digest, FieldHasher};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OutputRef {
    pub digest: Digest,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AcEntry {
    pub key: Digest,
    pub step: String,
    pub outputs: BTreeMap<String, OutputRef>,
}

/// What went into a step's key last time it ran.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    pub step: String,
    pub key: Digest,
    pub action: String,
    pub version: u32,
    /// The action's code fingerprint (absent in records of older binaries).
    #[serde(default)]
    pub code: Option<Digest>,
    pub params: Digest,
    /// top-level parameter name → digest of its canonical value, so a
    /// reason can name which parameters changed (empty in older records)
    #[serde(default)]
    pub param_digests: BTreeMap<String, Digest>,
    /// input group name → digest of the group
    pub inputs: BTreeMap<String, Digest>,
}

pub enum Lookup {
    Hit(AcEntry),
    /// No entry for this key.
    Miss,
    /// An entry exists but a blob it names is gone.
    OutputMissing(String),
}

impl FsStore {
    pub(crate) fn ac_path(&self, key: &Digest) -> std::path::PathBuf {
        fanout(&self.files.root.join("ac"), &key.hex())
    }
}

impl ActionCache for FsStore {
    fn get_entry(&self, key: &Digest) -> Option<AcEntry> {
        use std::io::Read;
        let mut f = fs::File::open(self.ac_path(key)).ok()?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).ok()?;
        let entry = serde_json::from_slice::<AcEntry>(&bytes).ok().filter(|e| e.key == *key)?;
        self.files.mark_used(&f);
        Some(entry)
    }

    fn put_entry(&self, entry: &AcEntry) -> Result<(), CacheError> {
        crate::crashpoint::hit("before-ac-commit");
        self.files.write_atomic(&self.ac_path(&entry.key), &serde_json::to_vec(entry).expect("serialisable"))
    }
}

impl Cache {
    /// Look `key` up: a hit only if every blob the entry names is present
    /// with its size (content is verified later, on use). A hit records the use.
    pub fn lookup(&self, key: &Digest) -> Lookup {
        let Some(entry) = self.store().get_entry(key) else {
            return Lookup::Miss;
        };
        for (name, out) in &entry.outputs {
            if !self.has_blob(&out.digest, out.size) {
                return Lookup::OutputMissing(name.clone());
            }
        }
        Lookup::Hit(entry)
    }

    /// Store an entry; every blob it names must already be in the store.
    pub fn commit(&self, entry: &AcEntry) -> Result<(), CacheError> {
        self.store().put_entry(entry)
    }

    fn record_path(&self, step: &str) -> std::path::PathBuf {
        record_path(&self.files.root, step)
    }

    pub fn last_record(&self, step: &str) -> Option<StepRecord> {
        let bytes = fs::read(self.record_path(step)).ok()?;
        serde_json::from_slice(&bytes).ok().filter(|r: &StepRecord| r.step == step)
    }

    pub fn save_record(&self, rec: &StepRecord) -> Result<(), CacheError> {
        self.files.write_atomic(&self.record_path(&rec.step), &serde_json::to_vec(rec).expect("serialisable"))
    }
}

/// `steps/<b3(step id)>.json`.
pub(crate) fn record_path(root: &std::path::Path, step: &str) -> std::path::PathBuf {
    let h = FieldHasher::new("step-id").field(step.as_bytes()).finish();
    root.join("steps").join(format!("{}.json", h.hex()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_moves_the_entry_stamp_forward_once_per_run() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let d = cache.put(b"out").unwrap();
        let key = Digest::of(b"key");
        let outputs = BTreeMap::from([("o".to_string(), OutputRef { digest: d, size: 3 })]);
        cache.commit(&AcEntry { key, step: "s".into(), outputs }).unwrap();
        drop(cache);
        let path = dir.path().join("ac").join(&key.hex()[..2]).join(key.hex());
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options().write(true).open(&path).unwrap().set_modified(past).unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        assert!(matches!(cache.lookup(&Digest::of(b"other")), Lookup::Miss));
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), past, "a miss is no use");
        assert!(matches!(cache.lookup(&key), Lookup::Hit(_)));
        let used = fs::metadata(&path).unwrap().modified().unwrap();
        assert!(used > past, "a hit records its use");
        assert!(matches!(cache.lookup(&key), Lookup::Hit(_)));
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), used, "once per run");
    }
}
