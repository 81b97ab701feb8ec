//! `verify PATH`: re-check a published export offline.
//!
//! Checks, each reported per file: `checksums.txt` parses and every listed
//! file matches; nothing is in the folder that the checksums do not list
//! and nothing listed is missing; `manifest.json` parses, its `bundle`
//! matches the bundle file; the bundle decompresses and its members are
//! exactly `contents[]` (path, sha256, bytes, records = lines); `rerunHash`
//! recomputes. Reads only the folder: no network, no cache.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::digest::Sha256;
use crate::formats::manifest::{self, Manifest};

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct Problem {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub path: String,
    pub ok: bool,
    pub checked: Vec<String>,
    pub problems: Vec<Problem>,
    pub signed: bool,
}

fn sha_file(p: &Path) -> std::io::Result<(Sha256, u64)> {
    use sha2::Digest as _;
    let mut f = std::fs::File::open(p)?;
    let mut h = sha2::Sha256::new();
    let n = std::io::copy(&mut f, &mut h)?;
    Ok((Sha256(h.finalize().into()), n))
}

pub fn verify(dir: &Path) -> VerifyReport {
    let mut problems = Vec::new();
    let mut checked = Vec::new();
    let mut p = |file: &str, reason: String| problems.push(Problem { file: file.to_string(), reason });
    let sums_path = dir.join("checksums.txt");
    let listed = match std::fs::read_to_string(&sums_path) {
        Err(e) => {
            p("checksums.txt", format!("cannot read: {e}"));
            Vec::new()
        }
        Ok(t) => manifest::parse_checksums(&t).unwrap_or_else(|e| {
            p("checksums.txt", e);
            Vec::new()
        }),
    };
    let listed_map: BTreeMap<String, Sha256> = listed.iter().cloned().collect();
    match std::fs::read_dir(dir) {
        Err(e) => p(".", format!("cannot list the folder: {e}")),
        Ok(read) => {
            let mut names: Vec<String> =
                read.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            for n in names {
                if n != "checksums.txt" && !listed_map.contains_key(&n) {
                    p(&n, "not listed in checksums.txt (extra file)".into());
                }
            }
        }
    }
    for (name, want) in &listed {
        if name.contains('/') || name == ".." {
            p(name, "checksums.txt names a path outside the export".into());
            continue;
        }
        match sha_file(&dir.join(name)) {
            Err(e) => p(name, format!("listed in checksums.txt but unreadable: {e}")),
            Ok((got, _)) if got != *want => {
                p(name, format!("sha256 {got} does not match checksums.txt ({want})"))
            }
            Ok(_) => checked.push(name.clone()),
        }
    }
    let manifest: Option<Manifest> = match std::fs::read(dir.join("manifest.json")) {
        Err(e) => {
            p("manifest.json", format!("cannot read: {e}"));
            None
        }
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| p("manifest.json", format!("not a manifest: {e}"))).ok()
        }
    };
    if let Some(m) = manifest {
        if !listed_map.contains_key("manifest.json") {
            p("manifest.json", "not covered by checksums.txt".into());
        }
        if !listed_map.contains_key(&m.bundle.path) {
            p(&m.bundle.path, "bundle not covered by checksums.txt".into());
        }
        let bundle_path = dir.join(&m.bundle.path);
        match sha_file(&bundle_path) {
            Err(e) => p(&m.bundle.path, format!("cannot read: {e}")),
            Ok((sha, n)) if sha != m.bundle.sha256 || n != m.bundle.bytes => p(
                &m.bundle.path,
                format!(
                    "sha256/size {sha}/{n} do not match the manifest ({}/{})",
                    m.bundle.sha256, m.bundle.bytes
                ),
            ),
            Ok(_) => check_members(&bundle_path, &m, &mut p),
        }
        if manifest::rerun_hash(&m.contents) != m.rerun_hash {
            p("manifest.json", "rerunHash does not match contents[]".into());
        }
    }
    VerifyReport {
        path: dir.display().to_string(),
        ok: problems.is_empty(),
        checked,
        problems,
        signed: false,
    }
}

fn check_members(bundle: &Path, m: &Manifest, p: &mut dyn FnMut(&str, String)) {
    let file = match std::fs::File::open(bundle) {
        Ok(f) => f,
        Err(e) => return p(&m.bundle.path, format!("cannot open: {e}")),
    };
    let dec = match zstd::stream::read::Decoder::new(file) {
        Ok(d) => d,
        Err(e) => return p(&m.bundle.path, format!("not zstd: {e}")),
    };
    let want: BTreeMap<&str, &manifest::Entry> = m.contents.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut ar = tar::Archive::new(dec);
    let entries = match ar.entries() {
        Ok(e) => e,
        Err(e) => return p(&m.bundle.path, format!("not a tar stream: {e}")),
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return p(&m.bundle.path, format!("corrupt tar stream: {e}")),
        };
        let path = entry.path().map(|x| x.display().to_string()).unwrap_or_default();
        let shown = format!("{}:{path}", m.bundle.path);
        let mut data = Vec::new();
        if let Err(e) = entry.read_to_end(&mut data) {
            return p(&shown, format!("unreadable member: {e}"));
        }
        match want.get(path.as_str()) {
            None => p(&shown, "member not listed in manifest contents[]".into()),
            Some(e) => {
                seen.insert(path.clone());
                let records = data.iter().filter(|&&b| b == b'\n').count() as u64;
                if Sha256::of(&data) != e.sha256 || data.len() as u64 != e.bytes || records != e.records {
                    p(&shown, "member sha256/bytes/records do not match manifest contents[]".into());
                }
            }
        }
    }
    for path in want.keys() {
        if !seen.contains(*path) {
            p(
                &format!("{}:{path}", m.bundle.path),
                "listed in contents[] but missing from the bundle".into(),
            );
        }
    }
}
