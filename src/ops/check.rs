//! `build --check`: the reproducibility proof a CI job runs (like
//! `nix build --check`). Every step of the named profiles re-runs without
//! reading the action cache, and the result is compared with what is
//! published in `out/<profile>/`, file by file, and for a differing
//! archive (a tar, zstd- or gzip-compressed, told by its magic bytes)
//! member by member.
//!
//! Invariants: the re-run uses a fresh scratch cache (a folder under the
//! real cache's temp area, removed afterwards; the real cache is only
//! held open with its shared build lock so `cache gc` cannot run under
//! it), so no action-cache entry, step record, run record or blob of the
//! real cache is read or written; nothing under `out/` is written. A
//! profile with nothing published is an error (exit 2), not "identical";
//! an `out/<profile>` folder is compared whatever it holds. Derived
//! profiles (mirror deltas) are re-run second, from the exports `out/`
//! holds (read, never written), as `build` makes them.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::build::{final_files, prepare, prepare_phase, Phase, Prepared};
use crate::cache::action::OutputRef;
use crate::cache::Cache;
use crate::digest::Digest;
use crate::error::Error;
use crate::exec::driver::{self, ExecOptions};
use crate::profile::Workspace;
use crate::shown;

#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub profiles: Vec<String>,
    pub exec: ExecOptions,
}

/// One file (and archive member, when one can be named) that differs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Difference {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// What differs: `content`, `missing` (rebuilt, not published) or
    /// `extra` (published, not rebuilt); for the member when one is named.
    pub what: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ProfileCheck {
    pub profile: String,
    pub identical: bool,
    pub differences: Vec<Difference>,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub identical: bool,
    pub profiles: Vec<ProfileCheck>,
}

/// Re-run the picked profiles from scratch and compare with `out/`.
pub fn check(ws: &Workspace, opts: &CheckOptions) -> Result<CheckReport, Error> {
    let picked = ws.pick(&opts.profiles).map_err(Error::Usage)?;
    for p in &picked {
        let target = ws.out_dir.join(&p.name);
        // a folder is compared whatever it holds (a tampered manifest is a difference)
        match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "{}: cannot check it: not a folder (an export is one)",
                    shown::path(&target)
                )))
            }
            Err(_) => {
                return Err(Error::Usage(format!(
                    "profile {}: nothing published to check at {}; build it first",
                    shown::name(&p.name),
                    shown::path(&target)
                )))
            }
        }
    }
    // held open (shared lock) so a gc cannot remove the scratch area under us
    let real = Cache::open(&ws.cache_dir)?;
    let scratch = real.scratch()?;
    let mut scratch_ws = ws.clone();
    scratch_ws.cache_dir = scratch.path().join("cache");
    let jobs = opts.exec.jobs.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| Error::StepsFailed(format!("cannot start {jobs} worker thread(s): {e}")))?;
    let prep = pool.install(|| prepare(&scratch_ws, &opts.profiles))?;
    let mut profiles = rerun(ws, &prep, opts, &pool)?;
    // derived profiles (mirror deltas) second, from the exports now published, as `build` does
    let derived = picked.iter().any(|p| crate::kinds::lookup(&p.kind).is_some_and(|k| k.derived().is_some()));
    if derived {
        let prep = pool.install(|| prepare_phase(&scratch_ws, &opts.profiles, Phase::Derived))?;
        if let Some((name, why)) = prep.no_base.first() {
            return Err(Error::Usage(format!(
                "profile {}: cannot rebuild it to check it: {why}",
                shown::name(name)
            )));
        }
        profiles.extend(rerun(ws, &prep, opts, &pool)?);
    }
    Ok(CheckReport { identical: profiles.iter().all(|p| p.identical), profiles })
}

/// Run one phase's steps in the scratch cache and compare each of its
/// profiles with what `out/` holds.
fn rerun(
    ws: &Workspace,
    prep: &Prepared<'_>,
    opts: &CheckOptions,
    pool: &rayon::ThreadPool,
) -> Result<Vec<ProfileCheck>, Error> {
    let report = driver::execute(
        &prep.graph,
        &prep.snaps,
        &prep.cache,
        &prep.keys,
        &opts.exec,
        &crate::exec::events::Discard,
        pool,
    );
    let failed: Vec<String> = report
        .failures()
        .map(|(i, f)| format!("step {}: {f}", prep.graph.g[petgraph::graph::NodeIndex::new(i)].id))
        .collect();
    if !failed.is_empty() {
        return Err(Error::StepsFailed(format!("the rebuild failed:\n  {}", failed.join("\n  "))));
    }
    let mut profiles = Vec::new();
    for p in &prep.profiles {
        let files = final_files(&prep.graph, &report, &p.name, &prep.cache)?.ok_or_else(|| {
            Error::StepsFailed(format!("profile {}: the rebuild published nothing", shown::name(&p.name)))
        })?;
        let dir = ws.out_dir.join(&p.name);
        let read = |name: &str| {
            files.iter().find(|(n, _)| n == name).and_then(|(_, o)| prep.cache.read(&o.digest).ok())
        };
        let by_content = crate::kinds::lookup(&p.kind).and_then(|k| k.content_differences(&dir, &read));
        let differences = match by_content {
            Some(d) => d.into_iter().map(|(file, what)| Difference { file, member: None, what }).collect(),
            None => compare(&dir, &files, &prep.cache)?,
        };
        profiles.push(ProfileCheck {
            profile: p.name.clone(),
            identical: differences.is_empty(),
            differences,
        });
    }
    Ok(profiles)
}

fn blake3_file(path: &Path) -> Option<Digest> {
    let mut h = blake3::Hasher::new();
    h.update_reader(fs::File::open(path).ok()?).ok()?;
    Some(Digest(*h.finalize().as_bytes()))
}

/// Every file below `dir`, as `/`-separated relative paths.
fn list_files(dir: &Path) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.map_err(|e| Error::Usage(format!("{}: {e}", shown::path(dir))))?;
        if !e.file_type().is_dir() {
            if let Ok(rel) = e.path().strip_prefix(dir) {
                names.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    Ok(names)
}

/// The differences between the export in `dir` and the rebuilt `files`.
fn compare(dir: &Path, files: &[(String, OutputRef)], cache: &Cache) -> Result<Vec<Difference>, Error> {
    let rebuilt: BTreeMap<&str, &OutputRef> = files.iter().map(|(n, o)| (n.as_str(), o)).collect();
    let published = list_files(dir)?;
    let mut diffs = Vec::new();
    for name in &published {
        if !rebuilt.contains_key(name.as_str()) {
            diffs.push(Difference { file: name.clone(), member: None, what: "extra" });
        }
    }
    for (name, o) in &rebuilt {
        let path = dir.join(name);
        if !published.iter().any(|p| p == name) {
            diffs.push(Difference { file: name.to_string(), member: None, what: "missing" });
            continue;
        }
        let same =
            fs::metadata(&path).is_ok_and(|m| m.len() == o.size) && blake3_file(&path) == Some(o.digest);
        if same {
            continue;
        }
        let members = match (archive_members(fs::File::open(&path).ok()), cache.reader(&o.digest)) {
            (Some(theirs), Ok(r)) => archive_members(Some(r)).map(|ours| member_diffs(name, &ours, &theirs)),
            _ => None,
        };
        match members {
            Some(m) if !m.is_empty() => diffs.extend(m),
            _ => diffs.push(Difference { file: name.to_string(), member: None, what: "content" }),
        }
    }
    diffs.sort();
    Ok(diffs)
}

/// The members of a tar archive, plain or zstd/gzip-compressed (told by
/// its first bytes): member path (repeated paths numbered) → BLAKE3 of its
/// header and content. Streams; `None` when it is no such archive.
fn archive_members<R: Read>(r: Option<R>) -> Option<BTreeMap<String, Digest>> {
    let mut r = std::io::BufReader::new(r?);
    let head = {
        use std::io::BufRead;
        r.fill_buf().ok()?.get(..4)?.to_vec()
    };
    let inner: Box<dyn Read> = if head == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::Decoder::with_buffer(r).ok()?)
    } else if head[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let mut archive = tar::Archive::new(inner);
    let mut members = BTreeMap::new();
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut h = blake3::Hasher::new();
        h.update(entry.header().as_bytes());
        h.update_reader(&mut entry).ok()?;
        let mut key = name.clone();
        let mut n = 1;
        while members.contains_key(&key) {
            n += 1;
            key = format!("{name} (#{n})");
        }
        members.insert(key, Digest(*h.finalize().as_bytes()));
    }
    // a non-archive that happens to parse as an empty tar names nothing
    (!members.is_empty()).then_some(members)
}

fn member_diffs(
    file: &str,
    ours: &BTreeMap<String, Digest>,
    theirs: &BTreeMap<String, Digest>,
) -> Vec<Difference> {
    let mut v = Vec::new();
    for (m, d) in ours {
        let what = match theirs.get(m) {
            Some(t) if t == d => continue,
            Some(_) => "content",
            None => "missing",
        };
        v.push(Difference { file: file.to_string(), member: Some(m.clone()), what });
    }
    for m in theirs.keys().filter(|m| !ours.contains_key(*m)) {
        v.push(Difference { file: file.to_string(), member: Some(m.clone()), what: "extra" });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_zst(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        zstd::encode_all(&b.into_inner().unwrap()[..], 3).unwrap()
    }

    #[test]
    fn archives_are_compared_member_by_member() {
        let a = tar_zst(&[("x", b"1"), ("y", b"2")]);
        let b = tar_zst(&[("x", b"1"), ("y", b"3"), ("z", b"4")]);
        let ma = archive_members(Some(&a[..])).unwrap();
        let mb = archive_members(Some(&b[..])).unwrap();
        let d = member_diffs("f.tar.zst", &ma, &mb);
        let got: Vec<_> = d.iter().map(|d| (d.member.as_deref().unwrap(), d.what)).collect();
        assert_eq!(got, [("y", "content"), ("z", "extra")]);
        assert!(archive_members(Some(&b"{\"json\": true}"[..])).is_none());
    }
}
