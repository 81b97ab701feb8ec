//! `mirror apply` and `mirror diff`: a site's side of mirror deltas.
//!
//! `apply BASE DELTA [--out DIR]` checks the delta before touching
//! anything, then rebuilds the new generation of the full export in a
//! staging folder beside its destination and swaps it in (renameat2
//! exchange with BASE, or a rename to DIR). Checks, in order, each a
//! refusal that changes nothing:
//! 1. DELTA is a delta export (else exit 2) whose `manifest.diff.json` is
//!    the one its manifest names and parses (else exit 3: tampered);
//! 2. the delta was made by this tool version (else exit 2: re-encoding
//!    must give the producer's bytes);
//! 3. BASE is the delta's base: a mirror export with the diff's export id
//!    and manifest digest (else exit 2, `ERR_EXPORT_BASE_MISSING`, naming
//!    the generation it needs, or saying the deltas are out of order);
//! 4. `delta/full.tar.zst` unpacks ([`crate::kinds::mirror::pack`]: only
//!    the listed paths, regular files; else exit 3) into a private folder
//!    beside the destination, and the carried TUF metadata there chains
//!    to BASE's root: new roots signed by
//!    the old and the new root keys, timestamp → snapshot → targets by
//!    hash, versions rising, `export.json` a signed target (exit 3);
//! 5. the delta's `manifest.dsse.json` is signed by a key BASE's root or
//!    the newest root names, and every file of DELTA is the one its
//!    manifest lists, nothing else (exit 3, also when a file no longer
//!    parses);
//! 6. every rebuilt file has the SHA-256 the new `checksums.txt` lists,
//!    and nothing else is there (exit 3).
//!
//! Data files are rebuilt from BASE's records, minus the tombstones and
//! the replaced records, plus the delta's, in (id, document) order,
//! encoded with the export's level ([`crate::kinds::mirror::shard`]);
//! normalised files from those records; the OCI layout and the
//! `.tar.zst` as the build makes them ([`crate::kinds::mirror::assemble`]).
//! The [`rebuild`] module writes only what changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::canon;
use crate::digest::Sha256;
use crate::error::Error;
use crate::formats::manifest::Manifest;
use crate::formats::{dsse, tuf};
use crate::kinds::mirror::delta::{self, Diff};
use crate::kinds::mirror::pack;
use crate::kinds::mirror::tree::{self, ExportJson, IndexShard, TreeFile};
use crate::shown;

mod rebuild;

/// The largest single file read from an export or a delta.
const MAX_FILE: u64 = 1 << 30;

fn usage(m: impl std::fmt::Display) -> Error {
    Error::Usage(m.to_string())
}
fn tampered(m: impl std::fmt::Display) -> Error {
    Error::Verify(format!("the delta does not check out: {m}"))
}

fn read(dir: &Path, rel: &str) -> std::io::Result<Vec<u8>> {
    crate::bounded::read_regular(&dir.join(rel), MAX_FILE)
}

fn export_json(dir: &Path) -> Result<ExportJson, String> {
    tree::read_export_json(dir)
}

/// The `N.root.json` files of an export's `tuf/metadata`, N = 1, 2, …
fn roots(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    (1..).map_while(|n| read(dir, &format!("tuf/metadata/{n}.root.json")).ok().map(|b| (n, b))).collect()
}

/// What `apply` did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub profile: String,
    pub base_generation: u64,
    pub generation: u64,
    pub out: PathBuf,
    pub files: usize,
    pub rebuilt: Vec<String>,
}

/// Check that a threshold of `role`'s keys in `root` signed `file`.
fn signed_by(file: &str, bytes: &[u8], root: &Value, role: &str) -> Result<tuf::Metadata, Error> {
    let m = tuf::Metadata::parse(file, bytes).map_err(tampered)?;
    crate::signing::tuf::check(&m, file, root, role).map_err(tampered)?;
    Ok(m)
}

/// The delta's manifest and diff, read (not yet trusted): the diff must
/// be the bundle the manifest names.
fn read_delta(delta: &Path) -> Result<(Manifest, Vec<u8>, Diff), Error> {
    let mbytes = read(delta, "manifest.json")
        .map_err(|e| usage(format!("{}: not a delta export ({e})", shown::path(delta))))?;
    let m: Manifest = serde_json::from_slice(&mbytes).map_err(|e| tampered(format!("manifest.json: {e}")))?;
    if crate::kinds::lookup(&m.kind).and_then(|k| k.derived()).is_none() {
        return Err(usage(format!(
            "{}: an export of kind {}, not a mirror delta",
            shown::path(delta),
            shown::name(&m.kind)
        )));
    }
    if !tree::safe_path(&m.bundle.path) {
        return Err(tampered(format!("unsafe path {}", shown::name(&m.bundle.path))));
    }
    let dbytes = read(delta, &m.bundle.path).map_err(|e| tampered(format!("{}: {e}", m.bundle.path)))?;
    if Sha256::of(&dbytes) != m.bundle.sha256 {
        return Err(tampered(format!("{} was changed", m.bundle.path)));
    }
    let diff: Diff =
        serde_json::from_slice(&dbytes).map_err(|e| tampered(format!("{}: {e}", m.bundle.path)))?;
    Ok((m, mbytes, diff))
}

/// Authenticate the delta: its `manifest.dsse.json` signed by a key of
/// one of `roots` over this `manifest.json`, and every file of `delta` the
/// one the manifest lists, nothing else.
fn authenticate(delta: &Path, m: &Manifest, mbytes: &[u8], roots: &[&Value]) -> Result<(), Error> {
    let env = read(delta, "manifest.dsse.json").map_err(|e| tampered(format!("manifest.dsse.json: {e}")))?;
    let env = dsse::Envelope::from_json(&env).map_err(|e| tampered(format!("manifest.dsse.json: {e}")))?;
    let value: Value = serde_json::from_slice(mbytes).map_err(|e| tampered(e.to_string()))?;
    if env.payload != canon::to_vec(&value) {
        return Err(tampered("manifest.dsse.json does not sign this manifest.json"));
    }
    let mut keys = Vec::new();
    for (role, root) in tuf::ROLES.iter().flat_map(|r| roots.iter().map(move |root| (*r, *root))) {
        for (_, public) in tuf::Metadata::role_keys(root, role).map(|r| r.0).unwrap_or_default() {
            let b = hex::decode(&public).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
            if let Some(k) = b.and_then(|b| crate::signing::PublicKey::from_bytes(&b).ok()) {
                keys.push(k);
            }
        }
    }
    crate::signing::check_envelope(&env, &keys).map_err(|e| {
        tampered(format!("manifest.dsse.json is not signed by a key of the base's TUF root: {e}"))
    })?;
    let mut listed: BTreeMap<String, Sha256> = m.files.iter().map(|f| (f.path.clone(), f.sha256)).collect();
    listed.insert(m.bundle.path.clone(), m.bundle.sha256);
    for (path, want) in &listed {
        if !tree::safe_path(path) {
            return Err(tampered(format!("unsafe path {}", shown::name(path))));
        }
        let got = read(delta, path).map_err(|e| tampered(format!("{}: {e}", shown::name(path))))?;
        if Sha256::of(&got) != *want {
            return Err(tampered(format!("{} was changed", shown::name(path))));
        }
    }
    for e in walkdir::WalkDir::new(delta.join("delta")) {
        let e = e.map_err(|e| tampered(e.to_string()))?;
        let rel = e.path().strip_prefix(delta).expect("below").to_string_lossy().into_owned();
        if !e.file_type().is_dir() && !listed.contains_key(&rel) {
            return Err(tampered(format!("{} is not in the delta's manifest", shown::name(&rel))));
        }
    }
    Ok(())
}

/// Check the carried TUF metadata against BASE's root; returns the new
/// targets' `signed` and the newest root's.
fn check_tuf(base: &Path, carried: &Path, base_roots: &[(u64, Vec<u8>)]) -> Result<(Value, Value), Error> {
    let (mut n, last) =
        base_roots.last().cloned().ok_or_else(|| usage("BASE has no tuf/metadata/1.root.json"))?;
    let mut root = tuf::Metadata::parse("root", &last).map_err(|e| usage(format!("BASE: {e}")))?.signed;
    loop {
        let name = format!("{}.root.json", n + 1);
        let Ok(bytes) = read(carried, &format!("tuf/metadata/{name}")) else { break };
        let m = signed_by(&name, &bytes, &root, "root")?;
        signed_by(&name, &bytes, &m.signed, "root")?;
        if m.version() != Some(n + 1) {
            return Err(tampered(format!("{name} has version {:?}", m.version())));
        }
        root = m.signed;
        n += 1;
    }
    let meta = |name: &str| {
        read(carried, &format!("tuf/metadata/{name}")).map_err(|e| tampered(format!("{name}: {e}")))
    };
    let ts_bytes = meta("timestamp.json")?;
    let ts = signed_by("timestamp.json", &ts_bytes, &root, "timestamp")?;
    if let Ok(old) = read(base, "tuf/metadata/timestamp.json") {
        let old = tuf::Metadata::parse("timestamp.json", &old).map_err(|e| usage(format!("BASE: {e}")))?;
        if ts.version() <= old.version() {
            return Err(tampered("the new timestamp's version does not rise"));
        }
    }
    let by_meta = |m: &tuf::Metadata, key: &str| -> Result<(u64, String), Error> {
        let e = m
            .signed
            .pointer(&format!("/meta/{}", key.replace('/', "~1")))
            .ok_or_else(|| tampered(format!("no meta for {key}")))?;
        let v = e.get("version").and_then(Value::as_u64).ok_or_else(|| tampered("meta without version"))?;
        let h = e.pointer("/hashes/sha256").and_then(Value::as_str).unwrap_or_default().to_string();
        Ok((v, h))
    };
    let (sv, sh) = by_meta(&ts, "snapshot.json")?;
    let snap_bytes = meta(&format!("{sv}.snapshot.json"))?;
    if Sha256::of(&snap_bytes).hex() != sh {
        return Err(tampered(format!("{sv}.snapshot.json is not the one the timestamp names")));
    }
    let snap = signed_by("snapshot.json", &snap_bytes, &root, "snapshot")?;
    let (tv, th) = by_meta(&snap, "targets.json")?;
    let tbytes = meta(&format!("{tv}.targets.json"))?;
    if Sha256::of(&tbytes).hex() != th {
        return Err(tampered(format!("{tv}.targets.json is not the one the snapshot names")));
    }
    Ok((signed_by("targets.json", &tbytes, &root, "targets")?.signed, root))
}

/// Apply `delta` to `base`, writing to `out` (default: `base`, swapped atomically).
pub fn apply(base: &Path, delta_dir: &Path, out: Option<&Path>) -> Result<Applied, Error> {
    let dest = out.unwrap_or(base).to_path_buf();
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    // one apply at a time beside a destination; a crashed one's leftovers go first
    let _lock = if parent.is_dir() { Some(rebuild::lock_and_clean(&parent)?) } else { None };
    let (m, mbytes, diff) = read_delta(delta_dir)?;
    let ours = env!("CARGO_PKG_VERSION");
    let theirs = diff.tool.get("version").and_then(Value::as_str).unwrap_or("?");
    if theirs != ours {
        return Err(usage(format!(
            "the delta was made by export-center {theirs}; this is {ours}: apply it with the same version (files are re-encoded and must come out byte for byte)"
        )));
    }
    let missing = |why: String| {
        usage(format!(
            "ERR_EXPORT_BASE_MISSING: the delta needs generation {} of {} (export id {}): {why}",
            diff.base_generation, diff.profile, diff.base_export_id
        ))
    };
    let old = export_json(base).map_err(|e| missing(format!("BASE is not a mirror export: {e}")))?;
    let base_id =
        Sha256::of(&read(base, "checksums.txt").map_err(|e| missing(format!("BASE: checksums.txt: {e}")))?);
    let base_manifest =
        Sha256::of(&read(base, "manifest.json").map_err(|e| missing(format!("BASE: manifest.json: {e}")))?);
    if old.profile != diff.profile
        || base_id != diff.base_export_id
        || base_manifest != diff.base_manifest_digest
    {
        let why = if old.profile != diff.profile {
            format!("BASE is an export of {}", old.profile)
        } else if old.generation < diff.base_generation {
            format!(
                "deltas out of order: BASE is generation {}; apply the deltas up to generation {} first",
                old.generation, diff.base_generation
            )
        } else if old.generation > diff.base_generation {
            format!("BASE is generation {}, already past this delta's base", old.generation)
        } else {
            format!("BASE is generation {} but not the export this delta was made from", old.generation)
        };
        return Err(missing(why));
    }
    let base_roots = roots(base);
    let (_, last_root) =
        base_roots.last().cloned().ok_or_else(|| usage("BASE has no tuf/metadata/1.root.json"))?;
    let trusted = tuf::Metadata::parse("root", &last_root).map_err(|e| usage(format!("BASE: {e}")))?.signed;
    // the carried files, unpacked (untrusted until the checks below) beside the destination
    let unpacked = tempfile::Builder::new()
        .prefix(rebuild::STAGING_PREFIXES[0])
        .tempdir_in(&parent)
        .map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&parent))))?;
    let expected: BTreeSet<String> = diff.carried.iter().cloned().collect();
    pack::unpack(&delta_dir.join(pack::PATH), &expected, unpacked.path())
        .map_err(|e| tampered(format!("{}: {e}", pack::PATH)))?;
    let carried = unpacked.path();
    let (targets, newest) = check_tuf(base, carried, &base_roots)?;
    authenticate(delta_dir, &m, &mbytes, &[&trusted, &newest])?;
    // envelopes packed without payload: made again from the file each signs
    // (now that the delta is authenticated; checked with every other file
    // against checksums.txt before the swap)
    for name in &diff.detached {
        let (_, source) = pack::DETACHABLE
            .iter()
            .find(|(e, _)| e == name)
            .ok_or_else(|| tampered(format!("{} cannot travel without payload", shown::name(name))))?;
        if !expected.contains(name) || !expected.contains(*source) {
            return Err(tampered(format!("{} is detached but not carried with {source}", shown::name(name))));
        }
        let stripped = read(carried, name).map_err(|e| tampered(format!("{name}: {e}")))?;
        let src = read(carried, source).map_err(|e| tampered(format!("{source}: {e}")))?;
        let whole = pack::attach(name, &stripped, &src).map_err(|e| tampered(format!("{name}: {e}")))?;
        fs::write(carried.join(name), whole).map_err(|e| Error::Publish(format!("{name}: {e}")))?;
    }
    let new_bytes = read(carried, tree::EXPORT_JSON).map_err(|e| tampered(format!("export.json: {e}")))?;
    let signed_export = targets.pointer("/targets/export.json/hashes/sha256").and_then(Value::as_str);
    if signed_export != Some(Sha256::of(&new_bytes).hex().as_str()) {
        return Err(tampered("export.json is not the one the new targets.json signs"));
    }
    let new: ExportJson =
        serde_json::from_slice(&new_bytes).map_err(|e| tampered(format!("export.json: {e}")))?;
    if new.generation != diff.generation {
        return Err(tampered("export.json and manifest.diff.json name different generations"));
    }
    if out.is_some() && fs::symlink_metadata(&dest).is_ok() {
        return Err(usage(format!("{}: already exists; --out must be a new folder", shown::path(&dest))));
    }
    let staging = tempfile::Builder::new()
        .prefix(rebuild::STAGING_PREFIXES[1])
        .tempdir_in(&parent)
        .map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&parent))))?;
    let mut hashed = rebuild::Hashed::default();
    let r = rebuild::Rebuild {
        base,
        delta_dir,
        carried,
        diff: &diff,
        old: &old,
        new: &new,
        new_bytes: &new_bytes,
    };
    let t = std::time::Instant::now();
    let rebuilt = rebuild::build_tree(&r, staging.path(), &mut hashed)?;
    tracing::debug!("apply: tree staged and checked against export.json in {:?}", t.elapsed());
    let files = rebuild::final_check(staging.path(), &mut hashed)?;
    tracing::debug!("apply: every file checked against checksums.txt at {:?}", t.elapsed());
    rebuild::swap(staging, &dest, out.is_none())?;
    tracing::debug!("apply: swapped in at {:?}", t.elapsed());
    Ok(Applied {
        profile: new.profile,
        base_generation: old.generation,
        generation: new.generation,
        out: dest,
        files,
        rebuilt,
    })
}

/// Decrypt every encrypted file `export.json` of the mirror at `dir`
/// lists (with the age identities in `identity`, one per line as
/// `age-keygen` writes them) and compare each with its plaintext digest:
/// the problems found. A mirror with nothing encrypted is an error (the
/// flag was given for a reason).
pub fn check_plaintexts(dir: &Path, identity: &str) -> Result<Vec<crate::ops::verify::Problem>, Error> {
    let ids: Vec<age::x25519::Identity> = identity
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .map(|l| l.parse().map_err(|e: &str| Error::Key(format!("--identity: {e}"))))
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err(Error::Key("--identity: no AGE-SECRET-KEY-1… line in the file".into()));
    }
    let e = export_json(dir).map_err(|e| usage(format!("--identity needs a mirror export: {e}")))?;
    let encrypted: Vec<&TreeFile> = e.files.iter().filter(|f| f.plaintext.is_some()).collect();
    if encrypted.is_empty() {
        return Err(usage(format!("{}: no encrypted file to check with --identity", shown::path(dir))));
    }
    let mut problems = Vec::new();
    for f in encrypted {
        let plain = f.plaintext.as_ref().expect("filtered");
        let problem = |reason: String| crate::ops::verify::Problem { file: f.path.clone(), reason };
        let file = match fs::File::open(dir.join(&f.path)) {
            Ok(file) => file,
            Err(e) => {
                problems.push(problem(format!("cannot open: {e}")));
                continue;
            }
        };
        let got = age::Decryptor::new(std::io::BufReader::new(file))
            .map_err(|e| e.to_string())
            .and_then(|d| d.decrypt(ids.iter().map(|i| i as &dyn age::Identity)).map_err(|e| e.to_string()))
            .and_then(|mut r| {
                let mut w = crate::actions::Sha256Writer::new(std::io::sink());
                std::io::copy(&mut r, &mut w).map(|_| (w.digest(), w.len)).map_err(|e| e.to_string())
            });
        match got {
            Err(e) => problems.push(problem(format!("cannot decrypt with the identity: {e}"))),
            Ok((sha, len)) if sha != plain.sha256 || len != plain.length => problems.push(problem(format!(
                "plaintext sha256/size {sha}/{len} do not match export.json ({}/{})",
                plain.sha256, plain.length
            ))),
            Ok(_) => {}
        }
    }
    Ok(problems)
}

/// What `mirror diff` reports.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffReport {
    pub from: u64,
    pub to: u64,
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
}

/// Record ids added, changed and removed from export `a` to export `b`
/// (mirror exports or mirror deltas' bases), read from their index shards.
pub fn diff(a: &Path, b: &Path) -> Result<DiffReport, Error> {
    let ea = export_json(a).map_err(usage)?;
    let eb = export_json(b).map_err(usage)?;
    let sa: BTreeMap<&str, Sha256> = ea.files.iter().map(|f| (f.path.as_str(), f.sha256)).collect();
    let sb: BTreeMap<&str, Sha256> = eb.files.iter().map(|f| (f.path.as_str(), f.sha256)).collect();
    let shards: BTreeSet<&str> =
        sa.keys().chain(sb.keys()).copied().filter(|p| delta::is_index_shard(p)).collect();
    let index = |dir: &Path, listed: &BTreeMap<&str, Sha256>, p: &str| -> Result<IndexShard, Error> {
        let Some(want) = listed.get(p) else { return Ok(IndexShard::new()) };
        let bytes = read(dir, p).map_err(|e| usage(format!("{}: {e}", shown::path(&dir.join(p)))))?;
        if Sha256::of(&bytes) != *want {
            return Err(Error::Verify(format!(
                "{}: not the file export.json lists",
                shown::path(&dir.join(p))
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| usage(format!("{}: {e}", shown::path(&dir.join(p)))))
    };
    let mut ch = delta::Changes::default();
    for p in shards {
        if sa.get(p) != sb.get(p) {
            ch.compare(&index(a, &sa, p)?, &index(b, &sb, p)?);
        }
    }
    Ok(DiffReport {
        from: ea.generation,
        to: eb.generation,
        added: ch.added.into_iter().collect(),
        updated: ch.updated.into_iter().collect(),
        removed: ch.removed.into_iter().collect(),
    })
}
