//! Generations of a profile's published export, and the history kept of
//! them: `out/.generations/<profile>/`.
//!
//! Layout (beside the exports, never inside one, so no export's bytes and
//! no golden file change; `.generations` can never be a profile: profile
//! names do not start with `.`):
//!
//! | path                                   | what                                     |
//! |----------------------------------------|------------------------------------------|
//! | `.generations/<p>/current.json`        | the [`Record`] of the live `out/<p>/`     |
//! | `.generations/<p>/<n>/`                | generation `n`, kept verbatim (verifiable)|
//! | `.generations/<p>/<n>.json`            | its [`Record`]                            |
//!
//! A generation is identified by its root digest: the SHA-256 of the
//! export's `checksums.txt` (which names the SHA-256 of every other
//! published file), or of `manifest.json` for an export without one. The
//! number is read back from the export: a record whose root digest is the
//! live export's gives its number, so the same inputs keep the same
//! generation; a live export that its record does not describe (a crash
//! between the swap and the record update, or an `out/` from before
//! generations) is the recorded number + 1 (1 without a record). Records
//! are written atomically (temp file + rename); a record without its
//! folder is ignored. `exports list` reads only; [`super::publish`] writes.
//! Mirrors take their delta base from here; nothing else reads it.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Sha256;
use crate::error::Error;
use crate::profile::Workspace;

/// The folder under `out/` holding every profile's generations.
pub const DIR: &str = ".generations";
/// The record of the live export.
pub const CURRENT: &str = "current.json";
/// The largest record or `checksums.txt` read.
const MAX_SMALL_FILE: u64 = 64 << 20;

/// What is known of one generation of a profile's export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub profile: String,
    pub kind: String,
    pub generation: u64,
    /// SHA-256 of the export's `checksums.txt` (else `manifest.json`).
    pub root_digest: Sha256,
    /// The manifest's `createdAt` (the pinned build time), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// `out/.generations/<profile>/`.
pub fn profile_dir(out_dir: &Path, profile: &str) -> PathBuf {
    out_dir.join(DIR).join(profile)
}

/// The root digest of the export in `export` (see the module doc).
pub fn root_digest(export: &Path) -> Option<Sha256> {
    ["checksums.txt", "manifest.json"].iter().find_map(|f| {
        let bytes = crate::bounded::read_regular(&export.join(f), MAX_SMALL_FILE).ok()?;
        Some(Sha256::of(&bytes))
    })
}

#[derive(Deserialize)]
struct ManifestTime {
    #[serde(rename = "createdAt")]
    created_at: Option<String>,
}

/// The `createdAt` of the export's manifest.
fn created_at(export: &Path) -> Option<String> {
    let f = fs::File::open(export.join("manifest.json")).ok()?;
    let head: ManifestTime =
        serde_json::from_reader(std::io::BufReader::new(f.take(super::layout::MAX_MANIFEST_BYTES))).ok()?;
    head.created_at
}

/// A record of the export at `export`, generation `n` (`None` when it has no root digest).
pub fn describe(export: &Path, profile: &str, kind: &str, generation: u64) -> Option<Record> {
    Some(Record {
        profile: profile.to_string(),
        kind: kind.to_string(),
        generation,
        root_digest: root_digest(export)?,
        created_at: created_at(export),
    })
}

/// The record at `path`, when it parses and names this profile.
pub fn read_record(path: &Path, profile: &str) -> Option<Record> {
    let bytes = crate::bounded::read_regular(path, MAX_SMALL_FILE).ok()?;
    let r: Record = serde_json::from_slice(&bytes).ok()?;
    (r.profile == profile).then_some(r)
}

/// Write `rec` as `dir/<name>` atomically (temp file in `dir`, fsync, rename).
pub fn write_record(dir: &Path, name: &str, rec: &Record) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    let mut text = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
    text.push(b'\n');
    tmp.write_all(&text)?;
    tmp.as_file().sync_all()?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(dir.join(name)).map_err(|e| e.error)?;
    Ok(())
}

/// The numbers of the kept generation folders of a profile, ascending.
pub fn kept_numbers(pdir: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = fs::read_dir(pdir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().and_then(parse_number))
        .collect();
    v.sort_unstable();
    v
}

/// A generation folder name: decimal digits without a leading zero.
fn parse_number(s: &str) -> Option<u64> {
    (!s.is_empty() && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The record of the live export `out/<profile>` (which must exist and be
/// an export of this profile): its recorded number when the record
/// describes it, else the recorded (or highest kept) number + 1. The
/// second value says whether `current.json` already holds it.
pub fn live(out_dir: &Path, profile: &str, kind: &str) -> Option<(Record, bool)> {
    let export = out_dir.join(profile);
    let pdir = profile_dir(out_dir, profile);
    let root = root_digest(&export)?;
    let rec = read_record(&pdir.join(CURRENT), profile);
    if let Some(r) = &rec {
        if r.root_digest == root && r.kind == kind {
            return Some((r.clone(), true));
        }
    }
    let last = rec.map_or(0, |r| r.generation).max(kept_numbers(&pdir).last().copied().unwrap_or(0));
    Some((describe(&export, profile, kind, last + 1)?, false))
}

/// `{export.previous}` of each profile whose kind carries state from its
/// live export (`Kind::carried_state`): `{generation, state}` of the live
/// export, absent when there is none.
pub fn carried(
    ws: &Workspace,
    profiles: &[&crate::profile::ProfileDef],
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut out = std::collections::BTreeMap::new();
    for p in profiles {
        let Some(kind) = crate::kinds::lookup(&p.kind) else { continue };
        let export = ws.out_dir.join(&p.name);
        if super::layout::previous_export(&export, &p.name, &p.kind) != Ok(true) {
            continue;
        }
        let Some(state) = kind.carried_state(&export) else { continue };
        if let Some((rec, _)) = live(&ws.out_dir, &p.name, &p.kind) {
            out.insert(p.name.clone(), serde_json::json!({"generation": rec.generation, "state": state}));
        }
    }
    out
}

/// One row of `exports list`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub profile: String,
    pub kind: String,
    pub generation: u64,
    /// `true` for the live `out/<profile>/`, `false` for a kept one.
    pub current: bool,
    pub path: PathBuf,
    pub root_digest: Sha256,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl Entry {
    fn new(r: Record, current: bool, path: PathBuf) -> Self {
        Entry {
            profile: r.profile,
            kind: r.kind,
            generation: r.generation,
            current,
            path,
            root_digest: r.root_digest,
            created_at: r.created_at,
        }
    }
}

/// The folder of a profile's published export to hand on (push, pull,
/// offline kits): the live `out/<p>/` when `generation` is `None` or is
/// the live one's number, else the kept `out/.generations/<p>/<n>/`.
/// A usage error (exit 2) names what is missing and what is kept.
pub fn export_dir(
    ws: &Workspace,
    profile: &crate::profile::ProfileDef,
    generation: Option<u64>,
) -> Result<(PathBuf, Record), Error> {
    let export = ws.out_dir.join(&profile.name);
    let live_rec = (super::layout::previous_export(&export, &profile.name, &profile.kind) == Ok(true))
        .then(|| live(&ws.out_dir, &profile.name, &profile.kind).map(|(r, _)| r))
        .flatten();
    let pdir = profile_dir(&ws.out_dir, &profile.name);
    match (generation, live_rec) {
        (None, Some(r)) => return Ok((export, r)),
        (None, None) => {
            return Err(Error::Usage(format!(
                "profile {}: no published export at {} (run `export-center build {}` first)",
                profile.name,
                crate::shown::path(&export),
                profile.name
            )))
        }
        (Some(n), Some(r)) if r.generation == n => return Ok((export, r)),
        (Some(_), _) => {}
    }
    let n = generation.expect("handled above");
    let dir = pdir.join(n.to_string());
    if dir.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        let root = root_digest(&dir);
        let rec = read_record(&pdir.join(format!("{n}.json")), &profile.name)
            .filter(|r| Some(r.root_digest) == root && r.generation == n)
            .or_else(|| describe(&dir, &profile.name, &profile.kind, n));
        if let Some(r) = rec {
            return Ok((dir, r));
        }
    }
    let mut kept: Vec<String> = kept_numbers(&pdir).iter().map(u64::to_string).collect();
    if let Some((r, _)) = live(&ws.out_dir, &profile.name, &profile.kind) {
        kept.push(format!("{} (live)", r.generation));
    }
    let kept = if kept.is_empty() { "none".to_string() } else { kept.join(", ") };
    Err(Error::Usage(format!(
        "profile {}: generation {n} is not kept (kept: {kept}; see `export-center exports list`)",
        profile.name
    )))
}

/// Every profile's live generation and kept ones, newest first within a
/// profile, profiles in name order. Reads only.
pub fn list(ws: &Workspace) -> Result<Vec<Entry>, Error> {
    let mut rows = Vec::new();
    for p in ws.profiles.values() {
        let export = ws.out_dir.join(&p.name);
        if super::layout::previous_export(&export, &p.name, &p.kind) == Ok(true) {
            if let Some((r, _)) = live(&ws.out_dir, &p.name, &p.kind) {
                rows.push(Entry::new(r, true, export));
            }
        }
        let pdir = profile_dir(&ws.out_dir, &p.name);
        for n in kept_numbers(&pdir).into_iter().rev() {
            let dir = pdir.join(n.to_string());
            let root = root_digest(&dir);
            let rec = read_record(&pdir.join(format!("{n}.json")), &p.name)
                .filter(|r| Some(r.root_digest) == root && r.generation == n)
                .or_else(|| describe(&dir, &p.name, &p.kind, n));
            if let Some(r) = rec {
                rows.push(Entry::new(r, false, dir));
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_folder_names() {
        assert_eq!(parse_number("1"), Some(1));
        assert_eq!(parse_number("120"), Some(120));
        assert_eq!(parse_number("01"), None);
        assert_eq!(parse_number("0"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("1.json"), None);
        assert_eq!(parse_number(".tmp-x"), None);
    }

    #[test]
    fn live_generation_is_read_back_from_the_export() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path();
        let export = out.join("p");
        fs::create_dir_all(&export).unwrap();
        fs::write(export.join("checksums.txt"), "a  x\n").unwrap();
        fs::write(export.join("manifest.json"), r#"{"createdAt":"2025-01-01T00:00:00Z"}"#).unwrap();
        // no record: generation 1
        let (r, recorded) = live(out, "p", "json:raw").unwrap();
        assert_eq!((r.generation, recorded), (1, false));
        assert_eq!(r.created_at.as_deref(), Some("2025-01-01T00:00:00Z"));
        let pdir = profile_dir(out, "p");
        fs::create_dir_all(&pdir).unwrap();
        write_record(&pdir, CURRENT, &Record { generation: 4, ..r.clone() }).unwrap();
        assert_eq!(live(out, "p", "json:raw").unwrap(), (Record { generation: 4, ..r.clone() }, true));
        // the export changed behind the record: the next number
        fs::write(export.join("checksums.txt"), "b  x\n").unwrap();
        let (r2, recorded) = live(out, "p", "json:raw").unwrap();
        assert_eq!((r2.generation, recorded), (5, false));
    }
}
