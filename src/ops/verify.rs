//! `verify PATH`: re-check a published export offline.
//!
//! Checks, each reported per file:
//! - `checksums.txt` parses and every listed file matches; nothing is in
//!   the folder that the checksums do not list and nothing listed is
//!   missing;
//! - `manifest.json` parses, its `bundle` matches the bundle file; the
//!   bundle decompresses and its members are exactly `contents[]` (path,
//!   sha256, bytes, records = lines); `rerunHash` recomputes;
//! - `provenance.json` is an in-toto Statement with a SLSA v1 predicate
//!   whose subjects are exactly the bundle and `manifest.json`, with their
//!   digests;
//! - signatures: `manifest.dsse.json` and `provenance.dsse.json` each
//!   verify under a trust root, and their payloads are the canonical
//!   `manifest.json` and the exact `provenance.json`.
//!
//! An unsigned export passes on its checksums and says so; it fails when
//! signatures are required (`--require-signature`, or any `--trust-root`:
//! a trust root means "this must be signed by it", so stripping the
//! signatures cannot pass). A signed export checked without a trust root
//! passes with its signatures reported "unchecked".
//!
//! `PATH` may also be a bundle file: then its sibling metadata is checked
//! the same way, and other files in that folder are ignored.
//! Reads only the export: no network, no cache.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::canon;
use crate::digest::Sha256;
use crate::formats::dsse::{Envelope, INTOTO_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE};
use crate::formats::manifest::{self, Manifest};
use crate::formats::provenance;
use crate::signing::{self, PublicKey};

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct Problem {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct VerifyOptions {
    pub trust_roots: Vec<PublicKey>,
    pub require_signature: bool,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub path: String,
    pub ok: bool,
    pub checked: Vec<String>,
    pub problems: Vec<Problem>,
    /// The export carries DSSE envelopes.
    pub signed: bool,
    /// "verified", "unchecked" (signed, no trust root given), "unsigned" or "invalid".
    pub signature: String,
    /// Keyids of the trust roots that verified the envelopes.
    #[serde(rename = "verifiedBy")]
    pub verified_by: Vec<String>,
}

const MANIFEST_DSSE: &str = "manifest.dsse.json";
const PROVENANCE_DSSE: &str = "provenance.dsse.json";

fn sha_file(p: &Path) -> std::io::Result<(Sha256, u64)> {
    use sha2::Digest as _;
    let mut f = std::fs::File::open(p)?;
    let mut h = sha2::Sha256::new();
    let n = std::io::copy(&mut f, &mut h)?;
    Ok((Sha256(h.finalize().into()), n))
}

struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, file: &str, reason: impl Into<String>) {
        self.0.push(Problem { file: file.to_string(), reason: reason.into() })
    }
}

pub fn verify(path: &Path, opts: &VerifyOptions) -> VerifyReport {
    let (dir, only_bundle) = if path.is_file() {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        (path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")), name)
    } else {
        (path, None)
    };
    let mut p = Problems(Vec::new());
    let mut checked = Vec::new();
    let listed = match std::fs::read_to_string(dir.join("checksums.txt")) {
        Err(e) => {
            p.add("checksums.txt", format!("cannot read: {e}"));
            Vec::new()
        }
        Ok(t) => manifest::parse_checksums(&t).unwrap_or_else(|e| {
            p.add("checksums.txt", e);
            Vec::new()
        }),
    };
    let listed_map: BTreeMap<String, Sha256> = listed.iter().cloned().collect();
    if only_bundle.is_none() {
        match std::fs::read_dir(dir) {
            Err(e) => p.add(".", format!("cannot list the folder: {e}")),
            Ok(read) => {
                let mut names: Vec<String> = read
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for n in names {
                    if n != "checksums.txt" && !listed_map.contains_key(&n) {
                        p.add(&n, "not listed in checksums.txt (extra file)");
                    }
                }
            }
        }
    }
    for (name, want) in &listed {
        if name.contains('/') || name == ".." {
            p.add(name, "checksums.txt names a path outside the export");
            continue;
        }
        match sha_file(&dir.join(name)) {
            Err(e) => p.add(name, format!("listed in checksums.txt but unreadable: {e}")),
            Ok((got, _)) if got != *want => {
                p.add(name, format!("sha256 {got} does not match checksums.txt ({want})"))
            }
            Ok(_) => checked.push(name.clone()),
        }
    }
    let manifest_bytes = std::fs::read(dir.join("manifest.json"))
        .map_err(|e| p.add("manifest.json", format!("cannot read: {e}")))
        .ok();
    let manifest: Option<Manifest> = manifest_bytes.as_ref().and_then(|b| {
        serde_json::from_slice(b).map_err(|e| p.add("manifest.json", format!("not a manifest: {e}"))).ok()
    });
    if let Some(m) = &manifest {
        check_manifest(dir, m, &listed_map, only_bundle.as_deref(), &mut p);
    }
    let provenance = std::fs::read(dir.join("provenance.json"))
        .map_err(|e| p.add("provenance.json", format!("cannot read: {e}")))
        .ok();
    if let (Some(stmt), Some(m), Some(mb)) = (&provenance, &manifest, &manifest_bytes) {
        check_subjects(stmt, m, mb, &mut p);
    }
    if !listed_map.contains_key("provenance.json") {
        p.add("provenance.json", "not covered by checksums.txt");
    }
    let (signed, signature, verified_by) =
        check_signatures(dir, opts, manifest_bytes.as_deref(), provenance.as_deref(), &listed_map, &mut p);
    let problems = p.0;
    VerifyReport {
        path: path.display().to_string(),
        ok: problems.is_empty(),
        checked,
        signature: if problems.iter().any(|x| x.file.ends_with(".dsse.json")) && signed {
            "invalid".into()
        } else {
            signature
        },
        problems,
        signed,
        verified_by,
    }
}

fn check_manifest(
    dir: &Path,
    m: &Manifest,
    listed: &BTreeMap<String, Sha256>,
    only_bundle: Option<&str>,
    p: &mut Problems,
) {
    if !listed.contains_key("manifest.json") {
        p.add("manifest.json", "not covered by checksums.txt");
    }
    if !listed.contains_key(&m.bundle.path) {
        p.add(&m.bundle.path, "bundle not covered by checksums.txt");
    }
    if let Some(name) = only_bundle {
        if name != m.bundle.path {
            p.add(
                name,
                format!("the manifest beside it describes bundle {:?}, not this file", m.bundle.path),
            );
        }
    }
    let bundle_path = dir.join(&m.bundle.path);
    match sha_file(&bundle_path) {
        Err(e) => p.add(&m.bundle.path, format!("cannot read: {e}")),
        Ok((sha, n)) if sha != m.bundle.sha256 || n != m.bundle.bytes => p.add(
            &m.bundle.path,
            format!(
                "sha256/size {sha}/{n} do not match the manifest ({}/{})",
                m.bundle.sha256, m.bundle.bytes
            ),
        ),
        Ok(_) => check_members(&bundle_path, m, &mut |f: &str, r: String| p.add(f, r)),
    }
    if manifest::rerun_hash(&m.contents) != m.rerun_hash {
        p.add("manifest.json", "rerunHash does not match contents[]");
    }
}

/// The statement's subjects must be exactly the bundle and the manifest.
fn check_subjects(stmt: &[u8], m: &Manifest, manifest_bytes: &[u8], p: &mut Problems) {
    let subjects = match provenance::subjects(stmt) {
        Ok(s) => s,
        Err(e) => return p.add("provenance.json", format!("not export provenance: {e}")),
    };
    let mut want =
        vec![(m.bundle.path.clone(), m.bundle.sha256), ("manifest.json".into(), Sha256::of(manifest_bytes))];
    want.sort();
    let mut got = subjects;
    got.sort();
    for (name, d) in &got {
        match want.iter().find(|(n, _)| n == name) {
            None => p.add("provenance.json", format!("subject {name:?} is not a file of this export")),
            Some((_, w)) if w != d => {
                p.add(name, format!("sha256 {w} does not match its provenance subject ({d})"))
            }
            Some(_) => {}
        }
    }
    for (name, _) in &want {
        if !got.iter().any(|(n, _)| n == name) {
            p.add("provenance.json", format!("{name} is not a subject"));
        }
    }
}

/// Returns (signed, signature status, verifying keyids).
fn check_signatures(
    dir: &Path,
    opts: &VerifyOptions,
    manifest: Option<&[u8]>,
    provenance: Option<&[u8]>,
    listed: &BTreeMap<String, Sha256>,
    p: &mut Problems,
) -> (bool, String, Vec<String>) {
    let present: Vec<&str> = [MANIFEST_DSSE, PROVENANCE_DSSE]
        .into_iter()
        .filter(|f| dir.join(f).symlink_metadata().is_ok() || listed.contains_key(*f))
        .collect();
    if present.is_empty() {
        if !opts.trust_roots.is_empty() || opts.require_signature {
            let why =
                if opts.trust_roots.is_empty() { "--require-signature" } else { "a --trust-root was given" };
            p.add(MANIFEST_DSSE, format!("missing: the export is unsigned, and {why}"));
        }
        return (false, "unsigned".into(), Vec::new());
    }
    // what each envelope must carry, byte for byte
    let manifest_payload =
        manifest.and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok()).map(|v| canon::to_vec(&v));
    let expect: [(&str, &str, Option<Vec<u8>>, &str); 2] = [
        (MANIFEST_DSSE, MANIFEST_PAYLOAD_TYPE, manifest_payload, "the canonical form of manifest.json"),
        (PROVENANCE_DSSE, INTOTO_PAYLOAD_TYPE, provenance.map(<[u8]>::to_vec), "provenance.json"),
    ];
    let mut verified_by = Vec::new();
    for (file, ty, payload, what) in expect {
        let env = match std::fs::read(dir.join(file)) {
            Err(e) => {
                p.add(file, format!("cannot read: {e} (a signed export has both envelopes)"));
                continue;
            }
            Ok(b) => match Envelope::from_json(&b) {
                Err(e) => {
                    p.add(file, format!("not a DSSE envelope: {e}"));
                    continue;
                }
                Ok(e) => e,
            },
        };
        if !listed.contains_key(file) {
            p.add(file, "not covered by checksums.txt");
        }
        if env.payload_type != ty {
            p.add(file, format!("payloadType {:?} is not {ty:?}", env.payload_type));
        }
        if payload.as_deref() != Some(env.payload.as_slice()) {
            p.add(file, format!("signed payload is not {what}"));
        }
        if opts.trust_roots.is_empty() {
            if opts.require_signature {
                p.add(file, "signed, but no --trust-root was given to check the signature");
            }
            continue;
        }
        match signing::check_envelope(&env, &opts.trust_roots) {
            Ok(k) => {
                if !verified_by.contains(&k) {
                    verified_by.push(k)
                }
            }
            Err(e) => p.add(file, e),
        }
    }
    let status = if opts.trust_roots.is_empty() { "unchecked" } else { "verified" };
    (true, status.into(), verified_by)
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
