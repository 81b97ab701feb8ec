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
//!   `manifest.json` and the exact `provenance.json`;
//! - with `--max-age` ([`VerifyOptions::max_age`]): the manifest's
//!   `createdAt` is recent enough and a TUF repository's timestamp has
//!   not expired ([`super::freshness`]).
//!
//! An unsigned export passes on its checksums and says so; it fails when
//! signatures are required (`--require-signature`, or any `--trust-root`:
//! a trust root means "this must be signed by it", so stripping the
//! signatures cannot pass). A signed export checked without a trust root
//! passes with its signatures reported "unchecked".
//!
//! How the bundle is decoded and whether members are re-counted as JSONL
//! lines is the kind's verify hook (`kinds::Kind::bundle`, found by the
//! manifest's `kind`), never guessed from file names; an export of a kind
//! this build does not know is a problem. The signature outcome is a
//! typed [`Signature`]: the bundle is decompressed only when it is
//! [`Signature::Verified`] or no trust root was asked for.
//!
//! `PATH` may also be a bundle file: then its sibling metadata is checked
//! the same way, and other files in that folder are ignored.
//! Reads only the export: no network, no cache.
//!
//! Hostile exports: every path taken from the export (checksums.txt,
//! `bundle.path`, `files[]`, `contents[]`) must stay inside it, and is
//! opened one component at a time without following symlinks; only
//! regular files are opened (see [`read`]). Each file is size-checked
//! before it is read: [`CHECKSUMS_MAX`], [`MANIFEST_MAX`],
//! [`PROVENANCE_MAX`], [`ENVELOPE_MAX`]; an oversized file is a problem
//! (exit 3); a detached signature's bundle is read as a stream. JSON is parsed into lean structs, never a
//! `serde_json::Value` (see [`lean`]); the bundle is streamed with the
//! zstd window capped at what we write and decompression stopped once it
//! passes what `contents[]` accounts for. The folder listing and the
//! problem list are capped ([`MAX_LISTED`], [`MAX_PROBLEMS`]). So memory
//! stays under 256 MiB whatever the export holds.

mod lean;
pub(crate) mod read;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::digest::Sha256;
use crate::formats::dsse::{Envelope, INTOTO_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE};
use crate::formats::manifest;
use crate::kinds::{self, BundleCheck, Codec, Members};
use crate::signing::{self, PublicKey};
use lean::Manifest;
pub(crate) use read::safe_path;

/// Largest `checksums.txt` read (a line is ~70 bytes + the name; a
/// mirror lists ~2 files per 100 advisories: 0.85 MiB at 300k, so this
/// covers ~5M advisories, and parsed it stays in tens of MiB).
pub const CHECKSUMS_MAX: u64 = 16 << 20;
/// Largest `manifest.json` read (~90,000 `contents[]` entries).
pub const MANIFEST_MAX: u64 = 16 << 20;
/// Largest `provenance.json` read.
pub const PROVENANCE_MAX: u64 = 16 << 20;
/// Largest DSSE envelope read: a [`MANIFEST_MAX`] payload in base64, plus room.
pub const ENVELOPE_MAX: u64 = 24 << 20;
/// Largest detached signature file (a base64 Ed25519 signature is 88 bytes).
const SIG_FILE_MAX: u64 = 4 << 10;
/// Files listed in the export folder before `verify` gives up on it (a
/// mirror holds ~5,800 at 300k advisories, growing with the corpus).
pub const MAX_LISTED: usize = 250_000;
/// Problems reported; the rest are counted in a last one.
pub const MAX_PROBLEMS: usize = 1_000;

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
    /// `--max-age`: fail a stale export (see [`super::freshness`]).
    pub max_age: Option<super::freshness::MaxAge>,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub path: String,
    pub ok: bool,
    pub checked: Vec<String>,
    pub problems: Vec<Problem>,
    /// The export carries DSSE envelopes.
    pub signed: bool,
    pub signature: Signature,
    /// Keyids of the trust roots that verified the envelopes.
    #[serde(rename = "verifiedBy")]
    pub verified_by: Vec<String>,
    /// From the manifest, when it parses: which export this is.
    pub profile: Option<String>,
    #[serde(rename = "createdAt")]
    pub created_at: Option<String>,
}

/// What the export's signatures came to (`signature` in `--json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signature {
    /// No DSSE envelope.
    Unsigned,
    /// Signed; no trust root given, so not checked.
    Unchecked,
    /// Every envelope verified under a trust root.
    Verified,
    /// An envelope is unreadable, describes other files, or does not verify.
    Invalid,
}

const MANIFEST_DSSE: &str = "manifest.dsse.json";
const PROVENANCE_DSSE: &str = "provenance.dsse.json";

/// SHA-256 and size of a file of the export (streamed).
fn sha_file(dir: &Path, rel: &str) -> Result<(Sha256, u64), String> {
    use sha2::Digest as _;
    let (mut f, _) = read::open(dir, rel)?;
    let mut h = sha2::Sha256::new();
    let n = std::io::copy(&mut f, &mut h).map_err(|e| e.to_string())?;
    Ok((Sha256(h.finalize().into()), n))
}

struct Problems(Vec<Problem>, usize);

impl Problems {
    fn add(&mut self, file: &str, reason: impl Into<String>) {
        if self.0.len() < MAX_PROBLEMS {
            self.0.push(Problem { file: file.to_string(), reason: reason.into() })
        } else {
            self.1 += 1;
        }
    }
    fn finish(mut self) -> Vec<Problem> {
        if self.1 > 0 {
            let reason = format!("{} more problems not listed (only the first {MAX_PROBLEMS} are)", self.1);
            self.0.push(Problem { file: ".".into(), reason });
        }
        self.0
    }
}

pub fn verify(path: &Path, opts: &VerifyOptions) -> VerifyReport {
    let (dir, only_bundle) = if path.symlink_metadata().is_ok_and(|m| m.is_file()) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        (path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")), name)
    } else {
        (path, None)
    };
    let mut p = Problems(Vec::new(), 0);
    let mut checked = Vec::new();
    let listed = match read::read(dir, "checksums.txt", CHECKSUMS_MAX)
        .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
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
        check_listing(dir, &listed_map, &mut p);
    }
    for (name, want) in &listed {
        if !safe_path(name) {
            p.add(name, "checksums.txt names a path outside the export");
            continue;
        }
        match sha_file(dir, name) {
            Err(e) => p.add(name, format!("listed in checksums.txt but unreadable: {e}")),
            Ok((got, _)) if got != *want => {
                p.add(name, format!("sha256 {got} does not match checksums.txt ({want})"))
            }
            Ok(_) => checked.push(name.clone()),
        }
    }
    let manifest_bytes = read::read(dir, "manifest.json", MANIFEST_MAX)
        .map_err(|e| p.add("manifest.json", format!("cannot read: {e}")))
        .ok();
    let manifest: Option<Manifest> = manifest_bytes.as_ref().and_then(|b| {
        serde_json::from_slice(b).map_err(|e| p.add("manifest.json", format!("not a manifest: {e}"))).ok()
    });
    if let Some(m) = &manifest {
        check_paths(m, &mut p);
    }
    if let (Some(m), Some(profile)) = (&manifest, &opts.profile) {
        if &m.profile != profile {
            p.add("manifest.json", format!("this is an export of profile {}, not {profile}", m.profile));
        }
    }
    let provenance = read::read(dir, "provenance.json", PROVENANCE_MAX)
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
    // what remains may hold a large bundle in memory: free what is done with
    drop((manifest_bytes, provenance));
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
        if opts.trust_roots.is_empty() || signature == Signature::Verified {
            check_manifest(dir, m, &listed_map, only_bundle.as_deref(), &mut p);
        } else {
            p.add(&m.bundle.path, "not checked: the signatures describing it did not verify");
        }
    }
    if let Some(max) = &opts.max_age {
        check_freshness(dir, manifest.as_ref(), max, &mut p);
    }
    let problems = p.finish();
    VerifyReport {
        path: path.display().to_string(),
        ok: problems.is_empty(),
        checked,
        signature,
        problems,
        signed,
        verified_by,
        profile: manifest.as_ref().map(|m| m.profile.clone()),
        created_at: manifest.as_ref().map(|m| m.created_at.clone()),
    }
}

/// `--max-age`: the manifest's `createdAt`, and a TUF repository's
/// timestamp expiry (see [`super::freshness`]).
fn check_freshness(dir: &Path, m: Option<&Manifest>, max: &super::freshness::MaxAge, p: &mut Problems) {
    use super::freshness;
    let Some(m) = m else {
        return p
            .add("manifest.json", format!("--max-age {}: no readable manifest, so no createdAt", max.text));
    };
    if let Some(why) = freshness::check_created(Some(&m.created_at), max) {
        p.add("manifest.json", why);
    }
    if crate::kinds::mirror::is_tuf_kind(&m.kind) {
        const TIMESTAMP: &str = "tuf/metadata/timestamp.json";
        match read::read(dir, TIMESTAMP, ENVELOPE_MAX) {
            Err(e) => p.add(TIMESTAMP, format!("--max-age {}: cannot read the TUF timestamp: {e}", max.text)),
            Ok(b) => {
                if let Some(why) = freshness::check_tuf_timestamp(&b, max) {
                    p.add(TIMESTAMP, why);
                }
            }
        }
    }
}

/// Nothing in the folder that checksums.txt does not list, and nothing
/// but folders and regular files (the listing stops at [`MAX_LISTED`]).
fn check_listing(dir: &Path, listed: &BTreeMap<String, Sha256>, p: &mut Problems) {
    let mut n = 0;
    for e in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let e = match e {
            Err(e) => {
                p.add(".", format!("cannot list the folder: {e}"));
                continue;
            }
            Ok(e) if e.file_type().is_dir() => continue,
            Ok(e) => e,
        };
        n += 1;
        if n > MAX_LISTED {
            return p.add(".", format!("more than {MAX_LISTED} files: not an export; stopped listing"));
        }
        let rel = e.path().strip_prefix(dir).unwrap_or(e.path()).to_string_lossy().into_owned();
        if !e.file_type().is_file() {
            p.add(&rel, "not a regular file");
        } else if rel != "checksums.txt" && !listed.contains_key(&rel) {
            p.add(&rel, "not listed in checksums.txt (extra file)");
        }
    }
}

/// Every path the manifest names stays inside the export (files) or the
/// bundle (members); one that does not is never opened.
fn check_paths(m: &Manifest, p: &mut Problems) {
    if !safe_path(&m.bundle.path) {
        p.add("manifest.json", format!("bundle.path {} leads outside the export", m.bundle.path));
    }
    for f in &m.files {
        if !safe_path(&f.path) {
            p.add("manifest.json", format!("files[] names a path outside the export: {}", f.path));
        }
    }
    for e in &m.contents {
        if !safe_path(&e.path) {
            p.add("manifest.json", format!("contents[] names a member path outside the bundle: {}", e.path));
        }
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
    if let Some(name) = only_bundle {
        if name != m.bundle.path {
            p.add(name, format!("the manifest beside it describes bundle {}, not this file", m.bundle.path));
        }
    }
    if safe_path(&m.bundle.path) {
        if !listed.contains_key(&m.bundle.path) {
            p.add(&m.bundle.path, "bundle not covered by checksums.txt");
        }
        match sha_file(dir, &m.bundle.path) {
            Err(e) => p.add(&m.bundle.path, format!("cannot read: {e}")),
            Ok((sha, n)) if sha != m.bundle.sha256 || n != m.bundle.bytes => p.add(
                &m.bundle.path,
                format!(
                    "sha256/size {sha}/{n} do not match the manifest ({}/{})",
                    m.bundle.sha256, m.bundle.bytes
                ),
            ),
            Ok(_) => match kinds::lookup(&m.kind) {
                Some(kind) => check_members(dir, m, kind.bundle(), &mut |f: &str, r: String| p.add(f, r)),
                None => p.add(
                    "manifest.json",
                    format!("kind {} is not one this build knows", crate::shown::name(&m.kind)),
                ),
            },
        }
    }
    if manifest::rerun_hash(&m.contents) != m.rerun_hash {
        p.add("manifest.json", "rerunHash does not match contents[]");
    }
    if only_bundle.is_some() {
        return;
    }
    for f in m.files.iter().filter(|f| safe_path(&f.path)) {
        if !listed.contains_key(&f.path) {
            p.add(&f.path, "not covered by checksums.txt");
        }
        match sha_file(dir, &f.path) {
            Err(e) => p.add(&f.path, format!("listed in the manifest but unreadable: {e}")),
            Ok((sha, n)) if sha != f.sha256 || n != f.bytes => p.add(
                &f.path,
                format!("sha256/size {sha}/{n} do not match the manifest ({}/{})", f.sha256, f.bytes),
            ),
            Ok(_) => {}
        }
    }
}

/// The statement's subjects must be exactly the bundle, the manifest and its `files[]`.
fn check_subjects(stmt: &[u8], m: &Manifest, manifest_bytes: &[u8], p: &mut Problems) {
    let subjects = match lean::subjects(stmt) {
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
            None => p.add("provenance.json", format!("subject {name} is not a file of this export")),
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
    if opts.trust_roots.is_empty() || !safe_path(name) {
        return;
    }
    let sig = match read::read(dir, name, SIG_FILE_MAX) {
        Err(e) => return p.add(name, format!("cannot read: {e}")),
        Ok(b) => match base64::engine::general_purpose::STANDARD.decode(String::from_utf8_lossy(&b).trim()) {
            Err(e) => return p.add(name, format!("not a base64 signature: {e}")),
            Ok(s) => s,
        },
    };
    if !safe_path(&m.bundle.path) {
        return p.add(name, "not checked: the manifest's bundle.path leads outside the export");
    }
    // streamed: the bundle is read once per trust root, never held
    let feed = |w: &mut dyn std::io::Write| -> std::io::Result<()> {
        let (f, _) = read::open(dir, &m.bundle.path).map_err(std::io::Error::other)?;
        std::io::copy(&mut std::io::BufReader::with_capacity(1 << 20, f), w).map(drop)
    };
    for k in &opts.trust_roots {
        match k.verify_stream(&sig, &feed) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => return p.add(name, format!("cannot check it over {}: {e}", m.bundle.path)),
        }
    }
    p.add(name, format!("does not verify {} under the trust root(s)", m.bundle.path));
}

/// Returns (signed, signature outcome, verifying keyids).
fn check_signatures(
    dir: &Path,
    opts: &VerifyOptions,
    manifest: Option<&[u8]>,
    provenance: Option<&[u8]>,
    listed: &BTreeMap<String, Sha256>,
    p: &mut Problems,
) -> (bool, Signature, Vec<String>) {
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
        return (false, Signature::Unsigned, Vec::new());
    }
    // what each envelope must carry, byte for byte (the manifest's
    // canonical form is manifest.json minus whitespace: see `lean`)
    type Same = fn(&[u8], &[u8]) -> bool;
    /// (envelope file, payload type, the bytes it must carry, how to compare, what they are)
    type Expected<'a> = (&'a str, &'a str, Option<&'a [u8]>, Same, &'a str);
    let exact: Same = |a, b| a == b;
    let expect: [Expected; 2] = [
        (
            MANIFEST_DSSE,
            MANIFEST_PAYLOAD_TYPE,
            manifest,
            lean::same_minified,
            "the canonical form of manifest.json",
        ),
        (PROVENANCE_DSSE, INTOTO_PAYLOAD_TYPE, provenance, exact, "provenance.json"),
    ];
    let mut verified_by = Vec::new();
    let mut invalid = false;
    for (file, ty, want, same, what) in expect {
        let mut bad = |reason: String| {
            invalid = true;
            p.add(file, reason)
        };
        let env = match read::read(dir, file, ENVELOPE_MAX) {
            Err(e) => {
                bad(format!("cannot read: {e} (a signed export has both envelopes)"));
                continue;
            }
            Ok(b) => match Envelope::from_json(&b) {
                Err(e) => {
                    bad(format!("not a DSSE envelope: {e}"));
                    continue;
                }
                Ok(e) => e,
            },
        };
        if !listed.contains_key(file) {
            bad("not covered by checksums.txt".into());
        }
        if env.payload_type != ty {
            bad(format!("payloadType {} is not {ty}", env.payload_type));
        }
        if !want.is_some_and(|w| same(w, &env.payload)) {
            bad(format!("signed payload is not {what}"));
        }
        if opts.trust_roots.is_empty() {
            if opts.require_signature {
                p.add(
                    file,
                    "signed, not checked: no trust root given (--require-signature needs --trust-root)",
                );
            }
            continue;
        }
        match signing::check_envelope(&env, &opts.trust_roots) {
            Ok(k) => {
                if !verified_by.contains(&k) {
                    verified_by.push(k)
                }
            }
            Err(e) => bad(e),
        }
    }
    let status = if invalid {
        Signature::Invalid
    } else if opts.trust_roots.is_empty() {
        Signature::Unchecked
    } else {
        Signature::Verified
    };
    (true, status, verified_by)
}

/// Counts what the decompressed bundle yields and fails past `left`
/// bytes: a bundle expands to its members' headers, data and padding,
/// nothing more.
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other(format!(
                "the bundle expands past the {} bytes contents[] accounts for",
                self.limit
            )));
        }
        let n = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got as u64;
        Ok(got)
    }
}

fn check_members(dir: &Path, m: &Manifest, hook: BundleCheck, p: &mut dyn FnMut(&str, String)) {
    if hook.codec == Codec::Plain {
        if !m.contents.is_empty() {
            p("manifest.json", "contents[] lists members of a bundle that is not an archive".into());
        }
        return;
    }
    let file = match read::open(dir, &m.bundle.path) {
        Ok((f, _)) => f,
        Err(e) => return p(&m.bundle.path, format!("cannot open: {e}")),
    };
    let dec: Box<dyn Read> = match hook.codec {
        Codec::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
        Codec::Plain => unreachable!("returned above"),
        Codec::Zstd => match zstd::stream::read::Decoder::new(file)
            .and_then(|mut d| d.window_log_max(crate::formats::tar::MAX_WINDOW_LOG).map(|_| d))
        {
            Ok(d) => Box::new(d),
            Err(e) => return p(&m.bundle.path, format!("not zstd: {e}")),
        },
    };
    // ustar: a 512-byte header per member, data padded to 512, two zero blocks
    let limit = m.contents.iter().fold(1024u64, |acc, e| {
        acc.saturating_add(512).saturating_add(e.bytes.saturating_add(511) / 512 * 512)
    });
    let dec = Bounded { inner: dec, left: limit, limit };
    let want: BTreeMap<&str, &manifest::Entry> = m.contents.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut ar = tar::Archive::new(dec);
    let entries = match ar.entries() {
        // raw: GNU long names and PAX headers are members of their own,
        // refused below, never read into memory by the tar crate
        Ok(e) => e.raw(true),
        Err(e) => return p(&m.bundle.path, format!("not a tar stream: {e}")),
    };
    let mut buf = vec![0u8; 1 << 16];
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return p(&m.bundle.path, format!("corrupt tar stream: {e}")),
        };
        let path = entry.path().map(|x| x.display().to_string()).unwrap_or_default();
        let shown = format!("{}:{path}", m.bundle.path);
        let ty = entry.header().entry_type();
        if !ty.is_file() {
            p(&shown, format!("member of type {ty:?}: a bundle holds only regular ustar members"));
            continue;
        }
        // streamed: a DB member may be large
        let (mut sha, mut bytes, mut lines) = (<sha2::Sha256 as sha2::Digest>::new(), 0u64, 0u64);
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
                // JSONL members count their lines; a DB file's rows are not re-counted
                // (only `.jsonl` members: a json:policy bundle also holds compressed JSONL and JSON)
                let records_ok =
                    hook.members != Members::JsonLines || !path.ends_with(".jsonl") || lines == e.records;
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
