//! Where a delta profile's two exports are, and what of them enters the
//! delta step (`{export.derived}`, a [`delta::Input`]): the engine's side
//! of `mirror:delta` ([`crate::kinds::Derived`]). Reads `out/` and puts
//! only what differs between the exports into the cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::delta::{Input, SEALED};
use super::tree::{self, ExportJson};
use crate::digest::{Digest, Sha256};
use crate::kinds::DeriveError;
use crate::profile::{ProfileDef, Workspace};

/// The biggest file read from an export for a delta (a data file).
const MAX_FILE: u64 = 1 << 30;

fn read(dir: &Path, rel: &str) -> Result<Vec<u8>, String> {
    crate::bounded::read_regular(&dir.join(rel), MAX_FILE)
        .map_err(|e| format!("{}: {e}", crate::shown::path(&dir.join(rel))))
}

fn export_json(dir: &Path) -> Result<ExportJson, String> {
    tree::read_export_json(dir)
}

/// Where the base of a delta profile is.
enum Base {
    Profile(String),
    Path(PathBuf),
    /// An archive of an export folder ([`super::base_archive`]).
    Archive(PathBuf),
}

fn base_of(ws: &Workspace, p: &ProfileDef) -> Result<Base, DeriveError> {
    let b = p
        .options
        .get("base")
        .and_then(|(v, _)| v.as_str())
        .ok_or_else(|| DeriveError::Invalid("base is missing".into()))?;
    if let Some(full) = ws.profiles.get(b) {
        if !super::is_tuf_kind(&full.kind) {
            return Err(DeriveError::Invalid(format!(
                "base {b:?} is a {} profile; a delta's base is a mirror:full profile or an export folder",
                full.kind
            )));
        }
        return Ok(Base::Profile(b.to_string()));
    }
    let path = ws.root.join(b);
    Ok(if super::base_archive::is_archive(&path) { Base::Archive(path) } else { Base::Path(path) })
}

/// A base archive's problem, naming it.
fn archive_error(path: &Path, e: String) -> DeriveError {
    DeriveError::Invalid(format!("base {}: {e}", crate::shown::path(path)))
}

/// The delta input of profile `p`: its base and the live export it leads to.
pub fn read_input(ws: &Workspace, p: &ProfileDef, cache: &crate::cache::Cache) -> Result<Input, DeriveError> {
    // an archive base is unpacked into the cache's scratch space for this read
    let mut _unpacked = None;
    let (full, old_dir) = match base_of(ws, p)? {
        Base::Archive(path) => {
            let tmp = cache.scratch().map_err(|e| DeriveError::Invalid(e.to_string()))?;
            let dir = super::base_archive::unpack(&path, tmp.path()).map_err(|e| archive_error(&path, e))?;
            _unpacked = Some(tmp);
            let e = export_json(&dir).map_err(|e| archive_error(&path, e))?;
            (e.profile, dir)
        }
        Base::Profile(full) => {
            let live = ws.out_dir.join(&full);
            let e = export_json(&live)
                .map_err(|_| DeriveError::NoBase(format!("{full} has no published export yet")))?;
            if e.generation <= 1 {
                return Err(DeriveError::NoBase(format!(
                    "{full} is at its first generation: no earlier one to take a delta from"
                )));
            }
            // out/.generations/<profile>/<n>/: where publishing keeps earlier generations
            let dir = ws.out_dir.join(".generations").join(&full).join((e.generation - 1).to_string());
            if !dir.is_dir() {
                return Err(DeriveError::NoBase(format!(
                    "generation {} of {full} is not kept (keep-generations)",
                    e.generation - 1
                )));
            }
            (full, dir)
        }
        Base::Path(dir) => {
            let e = export_json(&dir).map_err(DeriveError::BaseMissing)?;
            (e.profile, dir)
        }
    };
    let new_dir = ws.out_dir.join(&full);
    let old = export_json(&old_dir).map_err(DeriveError::BaseMissing)?;
    let new = export_json(&new_dir).map_err(|e| DeriveError::NoBase(format!("{full}: {e}")))?;
    if old.profile != new.profile {
        return Err(DeriveError::Invalid(format!("the base is an export of {}, not of {full}", old.profile)));
    }
    if new.generation <= old.generation {
        return Err(DeriveError::NoBase(format!(
            "the base is generation {} of {full}, and the live export is generation {}: nothing newer to deliver",
            old.generation, new.generation
        )));
    }
    let invalid = |m: String| DeriveError::Invalid(m);
    let sha = |dir: &Path, f: &str| read(dir, f).map(|b| Sha256::of(&b)).map_err(DeriveError::BaseMissing);
    let mut input = Input {
        profile: full.clone(),
        base_export_id: sha(&old_dir, "checksums.txt")?,
        base_manifest_digest: sha(&old_dir, "manifest.json")?,
        base_generation: old.generation,
        generation: new.generation,
        old: BTreeMap::new(),
        new: BTreeMap::new(),
    };
    let olds: BTreeMap<&str, Sha256> = old.files.iter().map(|f| (f.path.as_str(), f.sha256)).collect();
    let news: BTreeMap<&str, Sha256> = new.files.iter().map(|f| (f.path.as_str(), f.sha256)).collect();
    let put = |dir: &Path, path: &str| -> Result<Digest, DeriveError> {
        let b = read(dir, path).map_err(invalid)?;
        cache.put(&b).map_err(|e| DeriveError::Invalid(e.to_string()))
    };
    for (path, s) in &news {
        let encrypted = path.ends_with(tree::AGE_SUFFIX);
        if olds.get(path) == Some(s) || (path.starts_with("data/normalized/") && !encrypted) {
            continue;
        }
        input.new.insert(path.to_string(), put(&new_dir, path)?);
        if olds.contains_key(path) && (path.starts_with("data/raw/") || path.starts_with("indexes/")) {
            input.old.insert(path.to_string(), put(&old_dir, path)?);
        }
    }
    for path in olds.keys() {
        if !news.contains_key(path) && (path.starts_with("data/raw/") || path.starts_with("indexes/")) {
            input.old.insert(path.to_string(), put(&old_dir, path)?);
        }
    }
    for f in SEALED {
        if new_dir.join(f).exists() {
            input.new.insert(f.to_string(), put(&new_dir, f)?);
        }
    }
    let meta = new_dir.join("tuf/metadata");
    for e in std::fs::read_dir(&meta).map_err(|e| invalid(format!("{}: {e}", crate::shown::path(&meta))))? {
        let name = e.map_err(|e| invalid(e.to_string()))?.file_name().to_string_lossy().into_owned();
        let rel = format!("tuf/metadata/{name}");
        input.new.insert(rel.clone(), put(&new_dir, &rel)?);
    }
    Ok(input)
}

/// The profiles a delta needs built first, for [`crate::kinds::Derived::bases`].
pub fn bases(ws: &Workspace, p: &ProfileDef) -> Result<Vec<String>, DeriveError> {
    Ok(match base_of(ws, p)? {
        Base::Profile(full) => vec![full],
        Base::Path(dir) => {
            let e = export_json(&dir).map_err(DeriveError::BaseMissing)?;
            vec![e.profile]
        }
        Base::Archive(path) => {
            let e = super::base_archive::export_json(&path).map_err(|e| archive_error(&path, e))?;
            vec![e.profile]
        }
    })
}
