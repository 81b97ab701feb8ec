//! Offline kits: `kit stage` copies published exports, byte for byte, into
//! `DIR/offline-kit/` for removable media; `kit verify` re-checks a kit.
//!
//! Layout (a contract; names never change):
//!
//! | path                              | what                                                       |
//! |-----------------------------------|------------------------------------------------------------|
//! | `offline-kit/<profile>/…`         | the export folder's files and sub-folders, byte for byte, files 0644 |
//! | `offline-kit/manifest.json`       | [`KitManifest`]: pretty JSON, keys sorted, no staging time |
//! | `offline-kit/checksums.txt`       | `sha256sum` text over every other file of the kit, lexical order |
//! | `offline-kit/verify-offline.sh`   | [`SCRIPT_TEXT`], mode 0755, listed in `checksums.txt`      |
//!
//! Invariants:
//! - Never rebuilds: a kit holds exports as `out/` published them (or a
//!   kept generation, [`super::generations::export_dir`]). Each copied file
//!   is hashed while it is copied (streamed, bounded memory) and must match
//!   the export's own `checksums.txt`, and the export's root digest must
//!   be the one resolved before copying, else nothing is staged (an export
//!   damaged or republished meanwhile).
//! - Write-once: `DIR/offline-kit/` holds one kit. If it exists at all (the
//!   same kit version or another) staging refuses (exit 2) and touches
//!   nothing; a kit is never overwritten, replaced or added to.
//! - Atomic: the kit is built in `DIR/.offline-kit.tmp-*`, every file and
//!   folder fsynced, then renamed to `offline-kit` without replacing
//!   (`RENAME_NOREPLACE`), so a crash never leaves a half-staged kit under
//!   the final name (only a temp folder, which a later stage ignores).
//! - Deterministic: the same exports and kit version give the same bytes.
//!   The default kit version is `kit-` + 16 hex digits of the SHA-256 over
//!   each staged export's `profile`, `generation` and `rootDigest`: the
//!   same exports name the same kit.
//!
//! `verify` treats the kit as hostile input: it opens files as `verify`
//! does (no symlinks, regular files only, size caps) and runs
//! [`super::verify::verify`] on each staged export.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::verify::{read, Problem, VerifyOptions, VerifyReport};
use crate::digest::Sha256;
use crate::error::Error;
use crate::profile::Workspace;
use crate::shown;

/// The kit's folder in `DIR`.
pub const KIT_DIR: &str = "offline-kit";
/// `schemaVersion` of [`KitManifest`].
pub const SCHEMA: &str = "export-center-offline-kit/v1";
pub const MANIFEST: &str = "manifest.json";
pub const CHECKSUMS: &str = "checksums.txt";
pub const SCRIPT: &str = "verify-offline.sh";
/// Names at the top of the kit that cannot be profiles.
const RESERVED: [&str; 3] = [MANIFEST, CHECKSUMS, SCRIPT];
/// Prefix of the folder a kit is built in, inside `DIR`.
const TMP_PREFIX: &str = ".offline-kit.tmp-";
/// Largest kit `manifest.json` or `checksums.txt` read (~150 bytes a file).
const MAX_KIT_TEXT: u64 = 256 << 20;
/// Files listed in a kit folder before `verify` gives up on it.
const MAX_KIT_FILES: usize = 4 * super::verify::MAX_LISTED;
/// Longest `--kit-version`.
const MAX_VERSION_LEN: usize = 128;

/// The script staged as `verify-offline.sh`: POSIX `sh`, `find`, `awk`
/// and `sha256sum` (GNU or busybox) only; reads only.
pub const SCRIPT_TEXT: &str = r#"#!/bin/sh
# verify-offline.sh: check this offline kit (export-center-offline-kit/v1)
# against its checksums.txt with POSIX sh, find, awk and sha256sum only
# (GNU coreutils or busybox). Run it from anywhere:
#   sh /media/kit/offline-kit/verify-offline.sh
# Exit 0: every file checksums.txt lists is there and matches, and no
# file is there that it does not list. Exit 1: a mismatch, a missing or
# an extra file, or a malformed checksums.txt. Exit 2: it cannot run.
# It only reads: the kit may be on read-only media.
# checksums.txt is not signed: to check the exports' signatures, run
#   export-center kit verify DIR --trust-root KEY.pub
set -u
case "$0" in
*/*) cd "${0%/*}" || exit 2 ;;
esac
if [ ! -f checksums.txt ]; then
    echo "verify-offline: no checksums.txt in $(pwd)" >&2
    exit 2
fi
if ! command -v sha256sum >/dev/null 2>&1; then
    echo "verify-offline: sha256sum is not on PATH" >&2
    exit 2
fi
version=$(awk -F'"' '$2 == "kitVersion" { print $4; exit }' manifest.json 2>/dev/null)
listed=$(awk 'END { print NR }' checksums.txt)
status=0
malformed=$(awk 'length($0) < 67 || substr($0, 1, 64) !~ /^[0-9a-f]+$/ || substr($0, 65, 2) != "  " { print "line " NR }' checksums.txt)
if [ -n "$malformed" ]; then
    printf 'MALFORMED checksums.txt %s\n' $malformed
    status=1
fi
report=$(sha256sum -c checksums.txt 2>&1)
sums=$?
failed=$(printf '%s\n' "$report" | awk '!/: OK$/ && NF > 0')
if [ "$sums" -ne 0 ] || [ -n "$failed" ]; then
    printf '%s\n' "$failed"
    status=1
fi
extra=$(find . ! -type d -print | awk '
    BEGIN { while ((getline line < "checksums.txt") > 0) listed[substr(line, 67)] = 1 }
    { sub(/^\.\//, ""); if ($0 != "checksums.txt" && !($0 in listed)) print "EXTRA " $0 ": not listed in checksums.txt" }')
if [ -n "$extra" ]; then
    printf '%s\n' "$extra"
    status=1
fi
if [ "$status" -eq 0 ]; then
    echo "verify-offline: OK: kit ${version:-?}: $listed files match checksums.txt, no extra files"
else
    echo "verify-offline: FAILED: kit ${version:-?}: see the lines above (checksums.txt lists $listed files)"
fi
exit "$status"
"#;

/// What `kit stage` is asked to do.
#[derive(Clone, Debug, Default)]
pub struct StageOptions {
    /// `DIR`: the kit goes to `DIR/offline-kit/`.
    pub out: PathBuf,
    /// `--kit-version`; `None` derives one (see the module doc).
    pub kit_version: Option<String>,
    /// `--generation N` of each named profile (`None`: the live export).
    pub generation: Option<u64>,
    /// The profiles to stage; empty: every profile with a published export.
    pub profiles: Vec<String>,
}

/// `offline-kit/manifest.json`. Fields are declared in key order, so the
/// JSON's keys are sorted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KitManifest {
    pub exports: Vec<KitExport>,
    #[serde(rename = "kitVersion")]
    pub kit_version: String,
    #[serde(rename = "schemaVersion")]
    pub schema_version: String,
}

/// One staged export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KitExport {
    #[serde(rename = "createdAt")]
    pub created_at: Option<String>,
    /// Every file of the export, by path in the kit, in path order.
    pub files: Vec<KitFile>,
    pub generation: u64,
    pub kind: String,
    pub profile: String,
    /// `sha256:<hex>`: the generations module's root digest.
    #[serde(rename = "rootDigest")]
    pub root_digest: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KitFile {
    /// Relative to `offline-kit/`: `<profile>/<path in the export>`.
    pub path: String,
    /// Lower-case hex.
    pub sha256: String,
    pub size: u64,
}

/// What `kit stage` did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Staged {
    /// `DIR/offline-kit`.
    pub kit: PathBuf,
    pub kit_version: String,
    pub exports: Vec<StagedExport>,
    /// Every file of the kit, `checksums.txt` included.
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StagedExport {
    pub profile: String,
    pub kind: String,
    pub generation: u64,
    pub root_digest: String,
    pub created_at: Option<String>,
    /// Where it was copied from.
    pub source: PathBuf,
    pub files: usize,
}

/// A `--kit-version`: 1 to 128 of `A-Z a-z 0-9 . _ + -`, not starting with `.` or `-`.
pub fn check_kit_version(v: &str) -> Result<(), Error> {
    let ok = !v.is_empty()
        && v.len() <= MAX_VERSION_LEN
        && !v.starts_with(['.', '-'])
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--kit-version {}: use 1 to {MAX_VERSION_LEN} letters, digits, '.', '_', '+' or '-', not starting with '.' or '-'",
            shown::name(v)
        )))
    }
}

/// The kit version of the kit at `kit`, if its manifest says.
fn existing_version(kit: &Path) -> Option<String> {
    let bytes = read::read(kit, MANIFEST, MAX_KIT_TEXT).ok()?;
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "kitVersion")]
        kit_version: String,
    }
    serde_json::from_slice::<Head>(&bytes).ok().map(|h| h.kit_version)
}

/// The default kit version of these exports (see the module doc), from
/// each one's profile, generation and root digest, in profile order.
fn default_version(exports: &[(&str, u64, Sha256)]) -> String {
    let mut text = String::new();
    for (profile, generation, root) in exports {
        text += &format!("{profile}\t{generation}\tsha256:{root}\n");
    }
    format!("kit-{}", &Sha256::of(text.as_bytes()).hex()[..16])
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = shown::path(path);
    move |e| Error::Publish(format!("{what} {path}: {e}"))
}

/// Make folder `p` with mode 0755 (whatever the umask).
fn make_dir(p: &Path) -> Result<(), Error> {
    fs::create_dir(p).map_err(io("cannot create", p))?;
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).map_err(io("cannot set the mode of", p))
}

fn sync_dir(p: &Path) -> Result<(), Error> {
    fs::File::open(p).and_then(|f| f.sync_all()).map_err(io("cannot sync", p))
}

/// Write `bytes` as a new file `p` of `mode`, fsynced; returns its SHA-256.
fn write_new(p: &Path, bytes: &[u8], mode: u32) -> Result<Sha256, Error> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(p)
        .map_err(io("cannot create", p))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io("cannot write", p))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(io("cannot set the mode of", p))?;
    Ok(Sha256::of(bytes))
}

/// Copy regular file `from` to new file `to` (0644), streamed, fsynced;
/// returns its SHA-256 and size.
fn copy_file(from: &Path, to: &Path) -> Result<(Sha256, u64), Error> {
    use sha2::Digest as _;
    let mut src = match crate::bounded::open_regular(from, false).map_err(io("cannot open", from))? {
        Ok((f, _)) => f,
        Err(why) => {
            return Err(Error::Verify(format!(
                "{}: {why}: an export holds only files and folders; nothing staged",
                shown::path(from)
            )))
        }
    };
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(to)
        .map_err(io("cannot create", to))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io("cannot read", from)(e)),
        };
        h.update(&buf[..got]);
        dst.write_all(&buf[..got]).map_err(io("cannot write", to))?;
        n += got as u64;
    }
    dst.sync_all().map_err(io("cannot write", to))?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o644)).map_err(io("cannot set the mode of", to))?;
    Ok((Sha256(h.finalize().into()), n))
}

/// Copy the export folder `src` into the new folder `dest`; returns each
/// file (path relative to `src`, digest, size), in path order.
fn copy_export(src: &Path, dest: &Path) -> Result<Vec<(String, Sha256, u64)>, Error> {
    make_dir(dest)?;
    let mut files = Vec::new();
    let mut dirs = vec![dest.to_path_buf()];
    for e in walkdir::WalkDir::new(src).min_depth(1).sort_by_file_name() {
        let e = e.map_err(|e| Error::Publish(format!("cannot list {}: {e}", shown::path(src))))?;
        let rel = e.path().strip_prefix(src).unwrap_or(e.path());
        let Some(rel_s) = rel.to_str() else {
            return Err(Error::Verify(format!("{}: a file name that is not UTF-8", shown::path(e.path()))));
        };
        let to = dest.join(rel);
        if e.file_type().is_dir() {
            make_dir(&to)?;
            dirs.push(to);
        } else {
            let (sha, n) = copy_file(e.path(), &to)?;
            files.push((rel_s.to_string(), sha, n));
        }
    }
    for d in dirs.iter().rev() {
        sync_dir(d)?;
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// Every copied file must match the export's own `checksums.txt` (when
/// it has one), and everything it lists must have been copied.
fn check_against_checksums(
    profile: &str,
    source: &Path,
    copied: &Path,
    files: &[(String, Sha256, u64)],
) -> Result<(), Error> {
    let Ok(text) = read::read(copied, CHECKSUMS, super::verify::CHECKSUMS_MAX) else { return Ok(()) };
    let damaged = |why: String| {
        Error::Verify(format!(
            "profile {profile}: {} {why}: the export is damaged or changed while staging \
             (check it with `export-center verify`); nothing staged",
            shown::path(source)
        ))
    };
    let listed = crate::formats::manifest::parse_checksums(&String::from_utf8_lossy(&text))
        .map_err(|e| damaged(format!("has a checksums.txt that does not parse ({e})")))?;
    let listed: BTreeMap<String, Sha256> = listed.into_iter().collect();
    for (rel, sha, _) in files.iter().filter(|f| f.0 != CHECKSUMS) {
        match listed.get(rel) {
            None => {
                return Err(damaged(format!(
                    "holds {} that its checksums.txt does not list",
                    shown::name(rel)
                )))
            }
            Some(want) if want != sha => {
                return Err(damaged(format!("file {} does not match its checksums.txt", shown::name(rel))))
            }
            Some(_) => {}
        }
    }
    let have: BTreeSet<&str> = files.iter().map(|f| f.0.as_str()).collect();
    if let Some(missing) = listed.keys().find(|k| !have.contains(k.as_str())) {
        return Err(damaged(format!("lacks {}, which its checksums.txt lists", shown::name(missing))));
    }
    Ok(())
}

/// `path` (which may not exist yet) is `dir` or inside it, symlinks resolved.
fn within(path: &Path, dir: &Path) -> bool {
    let Ok(dir) = fs::canonicalize(dir) else { return false };
    // the longest existing ancestor, resolved, and the rest as given
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = fs::canonicalize(&existing) {
            let full = rest.iter().rev().fold(c, |acc: PathBuf, part| acc.join(part));
            return full.starts_with(&dir);
        }
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing =
                    if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent.to_path_buf() };
            }
            _ => return false,
        }
    }
}

/// Rename folder `from` to `to` unless `to` exists (atomically where the
/// file system supports `RENAME_NOREPLACE`). `Ok(false)`: `to` exists.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(from)?, c(to)?);
    // SAFETY: two NUL-terminated paths; no memory is shared with the kernel afterwards.
    let r = unsafe {
        libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_NOREPLACE)
    };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => Ok(false),
        // no RENAME_NOREPLACE here: check, then rename (a kit is never empty,
        // so rename(2) cannot replace another kit folder)
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            if to.symlink_metadata().is_ok() {
                return Ok(false);
            }
            fs::rename(from, to).map(|()| true)
        }
        _ => Err(e),
    }
}

/// `kit stage`: see the module doc.
pub fn stage(ws: &Workspace, opts: &StageOptions) -> Result<Staged, Error> {
    if let Some(v) = &opts.kit_version {
        check_kit_version(v)?;
    }
    // which exports: resolved (and every refusal made) before anything is written
    let mut picked: Vec<(&crate::profile::ProfileDef, PathBuf, super::generations::Record)> = Vec::new();
    if opts.profiles.is_empty() {
        if opts.generation.is_some() {
            return Err(Error::Usage("--generation N needs the PROFILE(s) to take generation N of".into()));
        }
        for p in ws.profiles.values() {
            if let Ok((dir, rec)) = super::generations::export_dir(ws, p, None) {
                picked.push((p, dir, rec));
            }
        }
        if picked.is_empty() {
            return Err(Error::Usage(format!(
                "nothing to stage: no profile has a published export under {} (run `export-center build` first)",
                shown::path(&ws.out_dir)
            )));
        }
    } else {
        let names: BTreeSet<&String> = opts.profiles.iter().collect();
        for name in names {
            let p = ws.profiles.get(name).ok_or_else(|| {
                let have: Vec<&str> = ws.profiles.keys().map(String::as_str).collect();
                Error::Usage(format!("no profile named {} (have: {})", shown::name(name), have.join(", ")))
            })?;
            let (dir, rec) = super::generations::export_dir(ws, p, opts.generation)?;
            picked.push((p, dir, rec));
        }
    }
    for (p, _, _) in &picked {
        if RESERVED.contains(&p.name.as_str()) {
            return Err(Error::Usage(format!(
                "profile {}: its name is the kit's own {} file; rename the profile to stage it",
                p.name, p.name
            )));
        }
    }
    picked.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let kit_version = match &opts.kit_version {
        Some(v) => v.clone(),
        None => default_version(
            &picked
                .iter()
                .map(|(p, _, r)| (p.name.as_str(), r.generation, r.root_digest))
                .collect::<Vec<_>>(),
        ),
    };
    let out = &opts.out;
    if within(out, &ws.out_dir) {
        return Err(Error::Usage(format!(
            "--out {}: inside {}, where the exports are published; stage the kit elsewhere",
            shown::path(out),
            shown::path(&ws.out_dir)
        )));
    }
    let kit = out.join(KIT_DIR);
    let refuse = |kit: &Path| {
        let which = match existing_version(kit) {
            Some(v) if v == kit_version => format!("kit version {} is already staged there", shown::name(&v)),
            Some(v) => format!(
                "it already holds kit version {} (not {})",
                shown::name(&v),
                shown::name(&kit_version)
            ),
            None => "it already exists".to_string(),
        };
        Error::Usage(format!(
            "{}: {which}; a kit is never overwritten or replaced (stage into another --out)",
            shown::path(kit)
        ))
    };
    if kit.symlink_metadata().is_ok() {
        return Err(refuse(&kit));
    }
    fs::create_dir_all(out).map_err(io("cannot create", out))?;
    let tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempdir_in(out)
        .map_err(io("cannot create a folder in", out))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
        .map_err(io("cannot set the mode of", tmp.path()))?;

    let mut exports = Vec::new();
    let mut staged = Vec::new();
    let mut sums: Vec<(String, Sha256)> = Vec::new();
    let mut bytes = 0u64;
    for (p, dir, rec) in &picked {
        let dest = tmp.path().join(&p.name);
        let files = copy_export(dir, &dest)?;
        check_against_checksums(&p.name, dir, &dest, &files)?;
        let root = files
            .iter()
            .find(|f| f.0 == CHECKSUMS)
            .or_else(|| files.iter().find(|f| f.0 == "manifest.json"))
            .map(|f| f.1);
        if root != Some(rec.root_digest) {
            return Err(Error::Publish(format!(
                "profile {}: {} changed while it was staged (republished?); nothing staged, try again",
                p.name,
                shown::path(dir)
            )));
        }
        let kit_files: Vec<KitFile> = files
            .iter()
            .map(|(rel, sha, n)| KitFile { path: format!("{}/{rel}", p.name), sha256: sha.hex(), size: *n })
            .collect();
        for f in &files {
            sums.push((format!("{}/{}", p.name, f.0), f.1));
            bytes += f.2;
        }
        staged.push(StagedExport {
            profile: p.name.clone(),
            kind: rec.kind.clone(),
            generation: rec.generation,
            root_digest: format!("sha256:{}", rec.root_digest),
            created_at: rec.created_at.clone(),
            source: dir.clone(),
            files: kit_files.len(),
        });
        exports.push(KitExport {
            created_at: rec.created_at.clone(),
            files: kit_files,
            generation: rec.generation,
            kind: rec.kind.clone(),
            profile: p.name.clone(),
            root_digest: format!("sha256:{}", rec.root_digest),
        });
    }
    let manifest = KitManifest { exports, kit_version: kit_version.clone(), schema_version: SCHEMA.into() };
    let mut text = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Publish(e.to_string()))?;
    text.push(b'\n');
    sums.push((MANIFEST.into(), write_new(&tmp.path().join(MANIFEST), &text, 0o644)?));
    sums.push((SCRIPT.into(), write_new(&tmp.path().join(SCRIPT), SCRIPT_TEXT.as_bytes(), 0o755)?));
    bytes += (text.len() + SCRIPT_TEXT.len()) as u64;
    sums.sort_by(|a, b| a.0.cmp(&b.0));
    let listing: String = sums.iter().map(|(p, s)| format!("{}  {p}\n", s.hex())).collect();
    write_new(&tmp.path().join(CHECKSUMS), listing.as_bytes(), 0o644)?;
    bytes += listing.len() as u64;
    sync_dir(tmp.path())?;
    crate::crashpoint::hit("kit-staged");
    if !rename_noreplace(tmp.path(), &kit).map_err(io("cannot rename the staged kit to", &kit))? {
        return Err(refuse(&kit)); // another stage won the race; ours is removed with tmp
    }
    let _ = tmp.keep();
    sync_dir(out)?;
    Ok(Staged { kit, kit_version, exports: staged, files: sums.len() as u64 + 1, bytes })
}

/// What `kit verify` is asked to check each export with.
#[derive(Debug, Default)]
pub struct KitVerifyOptions {
    /// Trust roots, `--require-signature` and `--max-age`, passed on to
    /// `verify` for every export (its `profile` is set per export).
    pub verify: VerifyOptions,
}

/// `kit verify`'s report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KitReport {
    /// The `offline-kit` folder checked.
    pub path: String,
    pub ok: bool,
    pub kit_version: Option<String>,
    /// Files whose digest matched `checksums.txt`.
    pub files_checked: usize,
    /// Every problem: the kit's own, and each export's with its file
    /// prefixed by `<profile>/`.
    pub problems: Vec<Problem>,
    /// `verify`'s report of each staged export (its `path` is the profile).
    pub exports: Vec<VerifyReport>,
}

/// The `offline-kit` folder of `dir`: `dir/offline-kit`, or `dir` itself.
pub fn locate(dir: &Path) -> Result<PathBuf, Error> {
    let inner = dir.join(KIT_DIR);
    if inner.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return Ok(inner);
    }
    if dir.join(MANIFEST).is_file() && dir.join(CHECKSUMS).is_file() && dir.join(SCRIPT).is_file() {
        return Ok(dir.to_path_buf());
    }
    Err(Error::Usage(format!(
        "{}: no offline kit here (neither {KIT_DIR}/ nor a folder holding {MANIFEST}, {CHECKSUMS} and {SCRIPT})",
        shown::path(dir)
    )))
}

/// A profile folder name in a kit: one safe path component, not reserved.
fn profile_ok(name: &str) -> bool {
    read::safe_path(name) && !name.contains('/') && !name.starts_with('.') && !RESERVED.contains(&name)
}

/// The `kind` of the export manifest in `export`, when it reads.
fn export_kind(export: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Head {
        kind: String,
    }
    let bytes = read::read(export, "manifest.json", super::verify::MANIFEST_MAX).ok()?;
    serde_json::from_slice::<Head>(&bytes).ok().map(|h| h.kind)
}

/// `kit verify`: the kit at `kit` (see [`locate`]).
pub fn verify(kit: &Path, opts: &KitVerifyOptions) -> KitReport {
    use sha2::Digest as _;
    let mut problems: Vec<Problem> = Vec::new();
    let mut add = |file: &str, reason: String| {
        if problems.len() < super::verify::MAX_PROBLEMS {
            problems.push(Problem { file: file.to_string(), reason });
        }
    };
    // checksums.txt: every listed file matches
    let listed: Vec<(String, Sha256)> = match read::read(kit, CHECKSUMS, MAX_KIT_TEXT)
        .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
        .and_then(|t| crate::formats::manifest::parse_checksums(&t))
    {
        Ok(l) => l,
        Err(e) => {
            add(CHECKSUMS, format!("cannot read: {e}"));
            Vec::new()
        }
    };
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    let mut files_checked = 0;
    for (name, want) in &listed {
        let got = read::open(kit, name).and_then(|(mut f, _)| {
            let mut h = sha2::Sha256::new();
            let n = std::io::copy(&mut f, &mut h).map_err(|e| e.to_string())?;
            Ok((Sha256(h.finalize().into()), n))
        });
        match got {
            Err(e) => add(name, format!("listed in checksums.txt but unreadable: {e}")),
            Ok((got, _)) if got != *want => {
                add(name, format!("sha256 {got} does not match checksums.txt ({want})"))
            }
            Ok((_, n)) => {
                files_checked += 1;
                sizes.insert(name, n);
            }
        }
    }
    let listed_map: BTreeMap<&str, Sha256> = listed.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    if listed_map.len() != listed.len() {
        add(CHECKSUMS, "lists a file more than once".into());
    }
    // nothing unlisted, nothing but files and folders
    let mut n = 0;
    for e in walkdir::WalkDir::new(kit).min_depth(1).sort_by_file_name() {
        let e = match e {
            Err(e) => {
                add(".", format!("cannot list the kit: {e}"));
                continue;
            }
            Ok(e) if e.file_type().is_dir() => continue,
            Ok(e) => e,
        };
        n += 1;
        if n > MAX_KIT_FILES {
            add(".", format!("more than {MAX_KIT_FILES} files: stopped listing"));
            break;
        }
        let rel = e.path().strip_prefix(kit).unwrap_or(e.path()).to_string_lossy().into_owned();
        if !e.file_type().is_file() {
            add(&rel, "not a regular file".into());
        } else if rel != CHECKSUMS && !listed_map.contains_key(rel.as_str()) {
            add(&rel, "not listed in checksums.txt (extra file)".into());
        }
    }
    for f in [MANIFEST, SCRIPT] {
        if !listed_map.contains_key(f) {
            add(f, "not covered by checksums.txt".into());
        }
    }
    // manifest.json: consistent with checksums.txt
    let manifest: Option<KitManifest> = match read::read(kit, MANIFEST, MAX_KIT_TEXT) {
        Err(e) => {
            add(MANIFEST, format!("cannot read: {e}"));
            None
        }
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| add(MANIFEST, format!("not a kit manifest: {e}"))).ok()
        }
    };
    let mut exports = Vec::new();
    if let Some(m) = &manifest {
        if m.schema_version != SCHEMA {
            add(MANIFEST, format!("schemaVersion {} is not {SCHEMA}", shown::name(&m.schema_version)));
        }
        let mut claimed: BTreeSet<&str> = [MANIFEST, SCRIPT].into_iter().collect();
        let mut seen = BTreeSet::new();
        for e in &m.exports {
            let p = e.profile.as_str();
            if !profile_ok(p) {
                add(
                    MANIFEST,
                    format!("exports[] names profile {} that is not a kit folder name", shown::name(p)),
                );
                continue;
            }
            if !seen.insert(p) {
                add(MANIFEST, format!("profile {p} is listed twice"));
                continue;
            }
            let prefix = format!("{p}/");
            for f in &e.files {
                if !f.path.starts_with(&prefix) {
                    add(MANIFEST, format!("files[] of {p} names {} outside {prefix}", shown::name(&f.path)));
                    continue;
                }
                claimed.insert(f.path.as_str());
                match listed_map.get(f.path.as_str()) {
                    None => add(&f.path, "in manifest.json but not in checksums.txt".into()),
                    Some(s) if s.hex() != f.sha256 => add(
                        &f.path,
                        format!("manifest.json says sha256 {}, checksums.txt {s}", shown::name(&f.sha256)),
                    ),
                    Some(_) => {
                        if sizes.get(f.path.as_str()).is_some_and(|n| *n != f.size) {
                            add(&f.path, format!("manifest.json says {} bytes; the file differs", f.size));
                        }
                    }
                }
            }
            let root = [CHECKSUMS, "manifest.json"]
                .iter()
                .find_map(|r| e.files.iter().find(|f| f.path == format!("{prefix}{r}")))
                .map(|f| format!("sha256:{}", f.sha256));
            if root.as_deref() != Some(e.root_digest.as_str()) {
                add(MANIFEST, format!("rootDigest of {p} is not the digest of its checksums.txt"));
            }
            for (name, _) in listed.iter().filter(|(n, _)| n.starts_with(&prefix)) {
                if !e.files.iter().any(|f| &f.path == name) {
                    add(name, format!("in checksums.txt but not in manifest.json files[] of {p}"));
                }
            }
            // the export itself, checked as `verify` checks it
            let vo = VerifyOptions {
                trust_roots: opts.verify.trust_roots.clone(),
                require_signature: opts.verify.require_signature,
                profile: Some(p.to_string()),
                max_age: opts.verify.max_age.clone(),
            };
            let mut r = super::verify::verify(&kit.join(p), &vo);
            r.path = p.to_string();
            if r.created_at.is_some() && r.created_at != e.created_at {
                add(MANIFEST, format!("createdAt of {p} is not its export's"));
            }
            if export_kind(&kit.join(p)).is_some_and(|k| k != e.kind) {
                add(MANIFEST, format!("kind of {p} is not its export's"));
            }
            for pr in &r.problems {
                add(&format!("{prefix}{}", pr.file), pr.reason.clone());
            }
            exports.push(r);
        }
        for (name, _) in &listed {
            if !claimed.contains(name.as_str())
                && !m.exports.iter().any(|e| name.starts_with(&format!("{}/", e.profile)))
            {
                add(name, "in checksums.txt but in no export of manifest.json".into());
            }
        }
    }
    KitReport {
        path: kit.display().to_string(),
        ok: problems.is_empty(),
        kit_version: manifest.map(|m| m.kit_version),
        files_checked,
        problems,
        exports,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_keys_are_sorted() {
        let m = KitManifest {
            exports: vec![KitExport {
                created_at: Some("2025-01-01T00:00:00Z".into()),
                files: vec![KitFile { path: "p/a".into(), sha256: "00".into(), size: 1 }],
                generation: 1,
                kind: "json:raw".into(),
                profile: "p".into(),
                root_digest: "sha256:00".into(),
            }],
            kit_version: "v".into(),
            schema_version: SCHEMA.into(),
        };
        let text = serde_json::to_string_pretty(&m).unwrap();
        // serde_json's Map is a BTreeMap here: a round trip sorts keys
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string_pretty(&v).unwrap(), text);
    }

    #[test]
    fn kit_versions() {
        for ok in ["1", "2025.01.02", "kit-abc_1+x", "V-1"] {
            assert!(check_kit_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a b", "ä", &"x".repeat(129), "..", "a\nb"] {
            assert!(check_kit_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_kit_is_renamed_into_place_but_never_over_another() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, to) = (d.path().join("a"), d.path().join("b"), d.path().join("kit"));
        for x in [&a, &b] {
            fs::create_dir(x).unwrap();
            fs::write(x.join("f"), x.to_str().unwrap()).unwrap();
        }
        assert!(rename_noreplace(&a, &to).unwrap());
        assert!(!rename_noreplace(&b, &to).unwrap());
        assert_eq!(fs::read_to_string(to.join("f")).unwrap(), a.to_str().unwrap());
        assert!(b.join("f").exists());
    }
}
