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
//! 4. the carried TUF metadata chains to BASE's root: new roots signed by
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

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::canon;
use crate::digest::Sha256;
use crate::error::Error;
use crate::formats::manifest::{self, Manifest};
use crate::formats::{dsse, tar, tuf};
use crate::kinds::mirror::assemble::oci_files;
use crate::kinds::mirror::delta::{self, Diff};
use crate::kinds::mirror::normalize;
use crate::kinds::mirror::shard::{encode_jsonl, file_digest, member_frame, MEMBER_LEVEL};
use crate::kinds::mirror::tree::{self, ExportJson, IndexShard, TreeFile};
use crate::shown;

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

fn sort_lines(lines: &mut [Vec<u8>]) -> Result<(), Error> {
    let mut keyed: Vec<((String, String), Vec<u8>)> = Vec::with_capacity(lines.len());
    for l in lines.iter_mut() {
        keyed.push((delta::record_key(l).map_err(tampered)?, std::mem::take(l)));
    }
    keyed.sort();
    for (slot, (_, l)) in lines.iter_mut().zip(keyed) {
        *slot = l;
    }
    Ok(())
}

/// Apply `delta` to `base`, writing to `out` (default: `base`, swapped atomically).
pub fn apply(base: &Path, delta_dir: &Path, out: Option<&Path>) -> Result<Applied, Error> {
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
    let carried = delta_dir.join("delta/full");
    let (targets, newest) = check_tuf(base, &carried, &base_roots)?;
    authenticate(delta_dir, &m, &mbytes, &[&trusted, &newest])?;
    let new_bytes = read(&carried, tree::EXPORT_JSON).map_err(|e| tampered(format!("export.json: {e}")))?;
    let signed_export = targets.pointer("/targets/export.json/hashes/sha256").and_then(Value::as_str);
    if signed_export != Some(Sha256::of(&new_bytes).hex().as_str()) {
        return Err(tampered("export.json is not the one the new targets.json signs"));
    }
    let new: ExportJson =
        serde_json::from_slice(&new_bytes).map_err(|e| tampered(format!("export.json: {e}")))?;
    if new.generation != diff.generation {
        return Err(tampered("export.json and manifest.diff.json name different generations"));
    }
    let dest = out.unwrap_or(base).to_path_buf();
    if out.is_some() && fs::symlink_metadata(&dest).is_ok() {
        return Err(usage(format!("{}: already exists; --out must be a new folder", shown::path(&dest))));
    }
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let staging = tempfile::Builder::new()
        .prefix(".apply-")
        .tempdir_in(&parent)
        .map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&parent))))?;
    let rebuilt = build_tree(base, delta_dir, &diff, &old, &new, &new_bytes, staging.path())?;
    let files = final_check(staging.path())?;
    swap(staging, &dest, out.is_none())?;
    Ok(Applied {
        profile: new.profile,
        base_generation: old.generation,
        generation: new.generation,
        out: dest,
        files,
        rebuilt,
    })
}

fn write(stage: &Path, rel: &str, bytes: &[u8]) -> Result<(), Error> {
    let p = stage.join(rel);
    fs::create_dir_all(p.parent().expect("in stage"))
        .map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&p))))?;
    fs::write(&p, bytes).map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&p))))
}

/// Write the new generation's every file into `stage`; returns the rebuilt data files.
fn build_tree(
    base: &Path,
    delta_dir: &Path,
    diff: &Diff,
    old: &ExportJson,
    new: &ExportJson,
    new_bytes: &[u8],
    stage: &Path,
) -> Result<Vec<String>, Error> {
    let carried = delta_dir.join("delta/full");
    let olds: BTreeMap<&str, Sha256> = old.files.iter().map(|f| (f.path.as_str(), f.sha256)).collect();
    let level = new.compression_level as i32;
    let mut rebuilt = Vec::new();
    let mut raw_lines: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let mut files: Vec<TreeFile> = new.files.clone();
    files.push(TreeFile {
        plaintext: None,
        path: tree::EXPORT_JSON.into(),
        sha256: Sha256::of(new_bytes),
        length: new_bytes.len() as u64,
    });
    files.sort();
    // raw files first: normalised ones are made from their records
    let order = |f: &TreeFile| if f.path.starts_with("data/normalized/") { 1 } else { 0 };
    let mut work: Vec<&TreeFile> = files.iter().collect();
    work.sort_by_key(|f| order(f));
    for f in work {
        let path = f.path.as_str();
        if !tree::safe_path(path) {
            return Err(tampered(format!("unsafe path {}", shown::name(path))));
        }
        let dst = stage.join(path);
        if let Ok(b) = read(&carried, path) {
            write(stage, path, &b)?;
        } else if olds.get(path) == Some(&f.sha256) {
            write(stage, path, &read(base, path).map_err(|e| usage(format!("BASE: {path}: {e}")))?)?;
        } else if path.starts_with("data/raw/") {
            let mut lines = match olds.contains_key(path) {
                true => {
                    delta::read_lines(&read(base, path).map_err(|e| usage(format!("BASE: {path}: {e}")))?)
                        .map_err(|e| usage(format!("BASE: {path}: {e}")))?
                }
                false => Vec::new(),
            };
            let gone: BTreeSet<Sha256> =
                diff.tombstones.iter().filter(|t| t.target == path).map(|t| t.sha256).collect();
            let mut added: Vec<Vec<u8>> = Vec::new();
            for r in diff.records.iter().filter(|r| r.target == path) {
                if !tree::safe_path(&r.path) {
                    return Err(tampered(format!("unsafe path {}", shown::name(&r.path))));
                }
                let b = read(delta_dir, &r.path).map_err(|e| tampered(format!("{}: {e}", r.path)))?;
                added.extend(delta::read_lines(&b).map_err(|e| tampered(format!("{}: {e}", r.path)))?);
            }
            let replaced: BTreeSet<(String, String)> =
                added.iter().map(|l| delta::record_key(l)).collect::<Result<_, _>>().map_err(tampered)?;
            let mut kept = Vec::new();
            for l in lines.drain(..) {
                if gone.contains(&Sha256::of(&l))
                    || replaced
                        .contains(&delta::record_key(&l).map_err(|e| usage(format!("BASE: {path}: {e}")))?)
                {
                    continue;
                }
                kept.push(l);
            }
            kept.extend(added);
            sort_lines(&mut kept)?;
            fs::create_dir_all(dst.parent().expect("in stage")).map_err(|e| Error::Publish(e.to_string()))?;
            encode_jsonl(kept.iter().map(Vec::as_slice), stage, &dst, level)
                .map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&dst))))?;
            raw_lines.insert(path.to_string(), kept);
            rebuilt.push(path.to_string());
        } else if let Some(rest) = path.strip_prefix("data/normalized/advisories/") {
            let raw = format!("data/raw/advisories/{rest}");
            let lines = match raw_lines.get(&raw) {
                Some(l) => l.clone(),
                None => delta::read_lines(
                    &fs::read(stage.join(&raw)).map_err(|e| tampered(format!("{raw}: {e}")))?,
                )
                .map_err(tampered)?,
            };
            let mut rows = Vec::new();
            for l in &lines {
                let v: Value = serde_json::from_slice(l).map_err(|e| tampered(format!("{raw}: {e}")))?;
                rows.extend(normalize::rows(&v).iter().map(canon::to_vec));
            }
            fs::create_dir_all(dst.parent().expect("in stage")).map_err(|e| Error::Publish(e.to_string()))?;
            encode_jsonl(rows.iter().map(Vec::as_slice), stage, &dst, level)
                .map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&dst))))?;
            rebuilt.push(path.to_string());
        } else {
            return Err(tampered(format!("{path} is neither carried, in BASE, nor made from records")));
        }
        let (sha, len) = file_digest(&dst).map_err(|e| Error::Publish(e.to_string()))?;
        if sha != f.sha256 || len != f.length {
            return Err(tampered(format!("{path} rebuilt to other bytes than export.json lists")));
        }
    }
    // TUF targets and OCI blobs: the same files under their digests, hard-linked (as publishing does)
    for f in &files {
        let src = stage.join(&f.path);
        for rel in [
            tree::target_file(&f.path, &f.sha256),
            format!("oci/{}", crate::formats::oci::blob_path(&f.sha256)),
        ] {
            let dst = stage.join(&rel);
            if dst.exists() {
                continue; // two tree files with the same bytes: one OCI blob
            }
            fs::create_dir_all(dst.parent().expect("in stage")).map_err(|e| Error::Publish(e.to_string()))?;
            fs::hard_link(&src, &dst).map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&dst))))?;
        }
    }
    for (path, bytes) in oci_files(&files, new_bytes, new.generation, &new.created_at) {
        write(stage, &format!("oci/{path}"), &bytes)?;
    }
    // the tar: each file's member frame in path order, then the end
    let tar_path = stage.join(format!("mirror-{}.tar.zst", new.generation));
    let mut out = fs::File::create(&tar_path).map_err(|e| Error::Publish(e.to_string()))?;
    let frame = tempfile::NamedTempFile::new_in(stage).map_err(|e| Error::Publish(e.to_string()))?;
    for f in &files {
        member_frame(&f.path, &stage.join(&f.path), frame.path())
            .map_err(|e| Error::Publish(e.to_string()))?;
        std::io::copy(
            &mut fs::File::open(frame.path()).map_err(|e| Error::Publish(e.to_string()))?,
            &mut out,
        )
        .map_err(|e| Error::Publish(e.to_string()))?;
    }
    drop(frame);
    std::io::Write::write_all(&mut out, &tar::end_frame(MEMBER_LEVEL).map_err(Error::Publish)?)
        .map_err(|e| Error::Publish(e.to_string()))?;
    // the rest of the carried files (manifest, seal, TUF metadata)
    for rel in &diff.carried {
        if !tree::safe_path(rel) {
            return Err(tampered(format!("unsafe path {}", shown::name(rel))));
        }
        if !stage.join(rel).exists() {
            write(stage, rel, &read(&carried, rel).map_err(|e| tampered(format!("{rel}: {e}")))?)?;
        }
    }
    // roots the delta does not carry come from BASE (they never change)
    for (n, b) in roots(base) {
        let rel = format!("tuf/metadata/{n}.root.json");
        if !stage.join(&rel).exists() {
            write(stage, &rel, &b)?;
        }
    }
    Ok(rebuilt)
}

/// Every staged file is the one `checksums.txt` lists, and nothing else is there.
fn final_check(stage: &Path) -> Result<usize, Error> {
    let text = fs::read_to_string(stage.join("checksums.txt"))
        .map_err(|e| tampered(format!("checksums.txt: {e}")))?;
    let listed: BTreeMap<String, Sha256> =
        manifest::parse_checksums(&text).map_err(tampered)?.into_iter().collect();
    let mut seen = 0;
    for e in walkdir::WalkDir::new(stage).min_depth(1) {
        let e = e.map_err(|e| Error::Publish(e.to_string()))?;
        if e.file_type().is_dir() {
            continue;
        }
        let rel = e.path().strip_prefix(stage).expect("below").to_string_lossy().into_owned();
        if rel == "checksums.txt" {
            continue;
        }
        let (sha, _) = file_digest(e.path()).map_err(|e| Error::Publish(e.to_string()))?;
        match listed.get(&rel) {
            Some(want) if *want == sha => seen += 1,
            Some(_) => return Err(tampered(format!("{rel} came out other than checksums.txt lists"))),
            None => return Err(tampered(format!("{rel} is not in checksums.txt"))),
        }
    }
    if seen != listed.len() {
        return Err(tampered(format!(
            "{} of the {} files checksums.txt lists were made",
            seen,
            listed.len()
        )));
    }
    Ok(seen + 1)
}

/// Move the staged folder to `dest`: exchanged with it when it exists
/// (`replace`), else renamed into place.
fn swap(staging: tempfile::TempDir, dest: &Path, replace: bool) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let stage = staging.keep();
    let perr = |p: &Path, e: std::io::Error| Error::Publish(format!("{}: {e}", shown::path(p)));
    for e in walkdir::WalkDir::new(&stage) {
        let e = e.map_err(|e| Error::Publish(e.to_string()))?;
        let mode = if e.file_type().is_dir() { 0o755 } else { 0o644 };
        fs::set_permissions(e.path(), fs::Permissions::from_mode(mode)).map_err(|x| perr(e.path(), x))?;
        if let Ok(f) = fs::File::open(e.path()) {
            let _ = f.sync_all();
        }
    }
    let result = if replace {
        super::publish::exchange(&stage, dest)
            .map_err(|e| perr(dest, e))
            .and_then(|_| fs::remove_dir_all(&stage).map_err(|e| perr(&stage, e)))
    } else {
        fs::rename(&stage, dest).map_err(|e| perr(dest, e))
    };
    if result.is_err() && stage.exists() {
        let _ = fs::remove_dir_all(&stage);
    }
    result
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
