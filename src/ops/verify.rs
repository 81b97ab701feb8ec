//! `verify PATH`: re-check a published export offline.
//!
//! Checks, each reported per file:
//! - `checksums.txt` parses and every listed file matches; nothing is in
//!   the folder that the checksums do not list and nothing listed is
//!   missing;
//! - `manifest.json` parses, its `bundle` matches the bundle file; the
//!   bundle decompresses and its members are exactly `contents[]` (path,
//!   sha256, bytes, records = lines); `rerunHash` recomputes;
//! - `manifest.json`'s `files[]` (an OCI layout) match the files;
//! - `provenance.json` is an in-toto Statement with a SLSA v1 predicate
//!   whose subjects are exactly the bundle, `manifest.json` and `files[]`,
//!   with their digests;
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
    /// The profile the export must be of (guards against a substituted export).
    pub profile: Option<String>,
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
    /// From the manifest, when it parses: which export this is.
    pub profile: Option<String>,
    #[serde(rename = "createdAt")]
    pub created_at: Option<String>,
}

const MANIFEST_DSSE: &str = "manifest.dsse.json";
const PROVENANCE_DSSE: &str = "provenance.dsse.json";

/// Open a file of the export: regular files only (no symlink, FIFO or
/// device is followed or opened, so nothing can make `verify` hang).
fn open_regular(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if !std::fs::symlink_metadata(p)?.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let f =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(p)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

fn read_regular(p: &Path) -> std::io::Result<Vec<u8>> {
    let mut b = Vec::new();
    open_regular(p)?.read_to_end(&mut b)?;
    Ok(b)
}

fn sha_file(p: &Path) -> std::io::Result<(Sha256, u64)> {
    use sha2::Digest as _;
    let mut f = open_regular(p)?;
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
    let (dir, only_bundle) = if path.symlink_metadata().is_ok_and(|m| m.is_file()) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        (path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")), name)
    } else {
        (path, None)
    };
    let mut p = Problems(Vec::new());
    let mut checked = Vec::new();
    let listed = match read_regular(&dir.join("checksums.txt"))
        .and_then(|b| String::from_utf8(b).map_err(std::io::Error::other))
    {
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
        let mut names = Vec::new();
        for e in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
            match e {
                Err(e) => p.add(".", format!("cannot list the folder: {e}")),
                Ok(e) if e.file_type().is_dir() => {}
                Ok(e) => {
                    let rel = e.path().strip_prefix(dir).unwrap_or(e.path()).to_string_lossy().into_owned();
                    if !e.file_type().is_file() {
                        p.add(&rel, "not a regular file");
                    }
                    names.push(rel);
                }
            }
        }
        for n in names {
            if n != "checksums.txt" && !listed_map.contains_key(&n) {
                p.add(&n, "not listed in checksums.txt (extra file)");
            }
        }
    }
    for (name, want) in &listed {
        if !safe_path(name) {
            p.add(name, "checksums.txt names a path outside the export");
            continue;
        }
        if dir.join(name).symlink_metadata().is_ok_and(|m| !m.file_type().is_file()) {
            p.add(name, "not a regular file");
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
    let manifest_bytes = read_regular(&dir.join("manifest.json"))
        .map_err(|e| p.add("manifest.json", format!("cannot read: {e}")))
        .ok();
    let manifest: Option<Manifest> = manifest_bytes.as_ref().and_then(|b| {
        serde_json::from_slice(b).map_err(|e| p.add("manifest.json", format!("not a manifest: {e}"))).ok()
    });
    if let (Some(m), Some(profile)) = (&manifest, &opts.profile) {
        if &m.profile != profile {
            p.add("manifest.json", format!("this is an export of profile {:?}, not {profile:?}", m.profile));
        }
    }
    let provenance = read_regular(&dir.join("provenance.json"))
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
    // checksums.txt is not signed: it may list only the export's own files
    if let Some(m) = &manifest {
        let mut allowed: Vec<&str> = vec![m.bundle.path.as_str(), "manifest.json", "provenance.json"];
        allowed.extend(m.files.iter().map(|f| f.path.as_str()));
        if signed {
            allowed.extend([MANIFEST_DSSE, PROVENANCE_DSSE]);
            for (name, _) in
                listed.iter().filter(|(n, _)| n.starts_with("signatures/") && n.ends_with(".sig"))
            {
                allowed.push(name);
                check_detached(dir, name, m, opts, &mut p);
            }
        }
        for (name, _) in &listed {
            if !allowed.contains(&name.as_str()) {
                p.add(name, "listed in checksums.txt but not part of this export (not in the manifest)");
            }
        }
        // the bundle is decompressed only once what describes it is trusted
        let trusted = opts.trust_roots.is_empty() || !p.0.iter().any(|x| x.file.ends_with(".dsse.json"));
        if trusted {
            check_manifest(dir, m, &listed_map, only_bundle.as_deref(), &mut p);
        } else {
            p.add(&m.bundle.path, "not checked: the signatures describing it did not verify");
        }
    }
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
        profile: manifest.as_ref().map(|m| m.profile.clone()),
        created_at: manifest.as_ref().map(|m| m.created_at.clone()),
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
    if only_bundle.is_some() {
        return;
    }
    for f in &m.files {
        if !safe_path(&f.path) {
            p.add("manifest.json", format!("files[] names a path outside the export: {:?}", f.path));
            continue;
        }
        if !listed.contains_key(&f.path) {
            p.add(&f.path, "not covered by checksums.txt");
        }
        match sha_file(&dir.join(&f.path)) {
            Err(e) => p.add(&f.path, format!("listed in the manifest but unreadable: {e}")),
            Ok((sha, n)) if sha != f.sha256 || n != f.bytes => p.add(
                &f.path,
                format!("sha256/size {sha}/{n} do not match the manifest ({}/{})", f.sha256, f.bytes),
            ),
            Ok(_) => {}
        }
    }
}

/// A relative path inside the export: no `..`, `.`, empty or absolute parts.
fn safe_path(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The statement's subjects must be exactly the bundle, the manifest and its `files[]`.
fn check_subjects(stmt: &[u8], m: &Manifest, manifest_bytes: &[u8], p: &mut Problems) {
    let subjects = match provenance::subjects(stmt) {
        Ok(s) => s,
        Err(e) => return p.add("provenance.json", format!("not export provenance: {e}")),
    };
    let mut want =
        vec![(m.bundle.path.clone(), m.bundle.sha256), ("manifest.json".into(), Sha256::of(manifest_bytes))];
    want.extend(m.files.iter().map(|f| (f.path.clone(), f.sha256)));
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

/// A detached signature (`signatures/<name>.sig`): base64 Ed25519 over
/// the bundle's bytes, checked against the trust roots.
fn check_detached(dir: &Path, name: &str, m: &Manifest, opts: &VerifyOptions, p: &mut Problems) {
    use base64::Engine as _;
    if opts.trust_roots.is_empty() {
        return;
    }
    let sig = match read_regular(&dir.join(name)) {
        Err(e) => return p.add(name, format!("cannot read: {e}")),
        Ok(b) => match base64::engine::general_purpose::STANDARD.decode(String::from_utf8_lossy(&b).trim()) {
            Err(e) => return p.add(name, format!("not a base64 signature: {e}")),
            Ok(s) => s,
        },
    };
    let bundle = match read_regular(&dir.join(&m.bundle.path)) {
        Err(e) => return p.add(name, format!("cannot read {}: {e}", m.bundle.path)),
        Ok(b) => b,
    };
    if !opts.trust_roots.iter().any(|k| k.verify(&bundle, &sig)) {
        p.add(name, format!("does not verify {} under the trust root(s)", m.bundle.path));
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
        let env = match read_regular(&dir.join(file)) {
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
    let file = match open_regular(bundle) {
        Ok(f) => f,
        Err(e) => return p(&m.bundle.path, format!("cannot open: {e}")),
    };
    let dec: Box<dyn Read> = if m.bundle.path.ends_with(".tar.gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        match zstd::stream::read::Decoder::new(file) {
            Ok(d) => Box::new(d),
            Err(e) => return p(&m.bundle.path, format!("not zstd: {e}")),
        }
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
        // streamed: a DB member may be large
        let (mut sha, mut bytes, mut lines) = (<sha2::Sha256 as sha2::Digest>::new(), 0u64, 0u64);
        let mut buf = vec![0u8; 1 << 16];
        let cap = want.get(path.as_str()).map_or(0, |e| e.bytes) + 1;
        loop {
            if bytes > cap {
                break; // longer than the manifest says: no need to read the rest
            }
            match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    sha2::Digest::update(&mut sha, &buf[..n]);
                    bytes += n as u64;
                    lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                }
                Err(e) => return p(&shown, format!("unreadable member: {e}")),
            }
        }
        let sha = Sha256(sha2::Digest::finalize(sha).into());
        match want.get(path.as_str()) {
            None => p(&shown, "member not listed in manifest contents[]".into()),
            Some(e) => {
                seen.insert(path.clone());
                // records are JSONL lines in json:raw members; a DB file's rows are not re-counted
                let records_ok = !path.ends_with(".jsonl") || lines == e.records;
                if sha != e.sha256 || bytes != e.bytes || !records_ok {
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
