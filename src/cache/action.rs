//! Action-cache entries (`ac/ab/<step key>`) and step records
//! (`steps/<b3(step id)>.json`).
//!
//! An entry maps a step key to the digests and sizes of the step's named
//! outputs. It is written after the outputs are in the CAS. A lookup is a
//! hit only if every named blob is present with its size; content is
//! verified later, on use.
//!
//! A step record remembers, per step id, what went into its last key, so a
//! miss can say *why* (see `exec::reason`).

use std::collections::BTreeMap;
use std::fs;

use serde::{Deserialize, Serialize};

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

impl Cache {
    fn ac_path(&self, key: &Digest) -> std::path::PathBuf {
        fanout(&self.root.join("ac"), &key.hex())
    }

    pub fn lookup(&self, key: &Digest) -> Lookup {
        let Ok(bytes) = fs::read(self.ac_path(key)) else {
            return Lookup::Miss;
        };
        let Ok(entry) = serde_json::from_slice::<AcEntry>(&bytes) else {
            return Lookup::Miss;
        };
        if entry.key != *key {
            return Lookup::Miss;
        }
        for (name, out) in &entry.outputs {
            if !self.has_blob(&out.digest, out.size) {
                return Lookup::OutputMissing(name.clone());
            }
        }
        Lookup::Hit(entry)
    }

    pub fn commit(&self, entry: &AcEntry) -> Result<(), CacheError> {
        crate::crashpoint::hit("before-ac-commit");
        self.write_atomic(&self.ac_path(&entry.key), &serde_json::to_vec(entry).expect("serialisable"))
    }

    /// Every action-cache entry file.
    pub fn ac_entries(&self) -> Vec<std::path::PathBuf> {
        walkdir::WalkDir::new(self.root.join("ac"))
            .min_depth(2)
            .max_depth(2)
            .sort_by_file_name()
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().to_path_buf())
            .collect()
    }

    fn record_path(&self, step: &str) -> std::path::PathBuf {
        let h = FieldHasher::new("step-id").field(step.as_bytes()).finish();
        self.root.join("steps").join(format!("{}.json", h.hex()))
    }

    pub fn last_record(&self, step: &str) -> Option<StepRecord> {
        let bytes = fs::read(self.record_path(step)).ok()?;
        serde_json::from_slice(&bytes).ok().filter(|r: &StepRecord| r.step == step)
    }

    pub fn save_record(&self, rec: &StepRecord) -> Result<(), CacheError> {
        self.write_atomic(&self.record_path(&rec.step), &serde_json::to_vec(rec).expect("serialisable"))
    }
}
