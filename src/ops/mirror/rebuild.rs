//! The rebuilding half of `mirror apply`: the new generation's files,
//! staged beside the destination, checked, and swapped in.
//!
//! Unchanged files are hard links to BASE's (nothing writes an export in
//! place, so sharing inodes is safe; a copy when BASE is on another file
//! system), data files touched by the delta are re-encoded from BASE's
//! records and the delta's, `mirror-<generation>.tar.zst` copies BASE's
//! member frames of unchanged files ([`crate::formats::zstd_frames`]) and
//! encodes the others, and every staged file is hashed once per inode and
//! checked against the new `checksums.txt`. One `syncfs` makes the stage
//! durable before the swap.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{read, roots, tampered, usage};
use crate::canon;
use crate::digest::Sha256;
use crate::error::Error;
use crate::formats::{manifest, tar};
use crate::kinds::mirror::assemble::oci_files;
use crate::kinds::mirror::delta::{self, Diff};
use crate::kinds::mirror::normalize;
use crate::kinds::mirror::shard::{copy_wide, encode_jsonl, file_digest, member_frame, MEMBER_LEVEL};
use crate::kinds::mirror::tree::{self, ExportJson, TreeFile};
use crate::shown;

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

fn write(stage: &Path, rel: &str, bytes: &[u8]) -> Result<(), Error> {
    let p = stage.join(rel);
    fs::create_dir_all(p.parent().expect("in stage"))
        .map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&p))))?;
    fs::write(&p, bytes).map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&p))))
}

/// SHA-256s of staged files by inode: a file linked under its tree, TUF
/// and OCI names (or from BASE) is read once.
#[derive(Default)]
pub(super) struct Hashed(std::collections::HashMap<(u64, u64), (Sha256, u64)>);

impl Hashed {
    /// Hash, in parallel, every regular file below `dir` not hashed yet.
    pub(super) fn prefetch(&mut self, dir: &Path) -> Result<(), Error> {
        use rayon::prelude::*;
        use std::os::unix::fs::MetadataExt;
        let mut todo = BTreeMap::new();
        for e in walkdir::WalkDir::new(dir).min_depth(1) {
            let e = e.map_err(|e| Error::Publish(e.to_string()))?;
            if let Ok(m) = e.metadata().map(|m| (m.is_file(), m.dev(), m.ino())) {
                if m.0 && !self.0.contains_key(&(m.1, m.2)) {
                    todo.entry((m.1, m.2)).or_insert_with(|| e.path().to_path_buf());
                }
            }
        }
        let done: Vec<_> = todo
            .into_par_iter()
            .map(|(k, p)| {
                file_digest(&p)
                    .map(|d| (k, d))
                    .map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&p))))
            })
            .collect::<Result<_, _>>()?;
        self.0.extend(done);
        Ok(())
    }

    fn of(&mut self, p: &Path) -> Result<(Sha256, u64), Error> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::symlink_metadata(p).map_err(|e| Error::Publish(format!("{}: {e}", shown::path(p))))?;
        if !m.is_file() {
            return Err(tampered(format!("{} is not a regular file", shown::path(p))));
        }
        if let Some(d) = self.0.get(&(m.dev(), m.ino())) {
            return Ok(*d);
        }
        let d = file_digest(p).map_err(|e| Error::Publish(format!("{}: {e}", shown::path(p))))?;
        self.0.insert((m.dev(), m.ino()), d);
        Ok(d)
    }
}

/// Place BASE's `rel` at `dst`: a hard link when BASE holds a regular
/// file there on the same file system (nothing ever writes an export in
/// place, so sharing its inode is safe), else a copy.
fn link_or_copy(base: &Path, rel: &str, dst: &Path) -> Result<(), Error> {
    let src = base.join(rel);
    if fs::symlink_metadata(&src).is_ok_and(|m| m.is_file()) && fs::hard_link(&src, dst).is_ok() {
        return Ok(());
    }
    let bytes = read(base, rel).map_err(|e| usage(format!("BASE: {rel}: {e}")))?;
    fs::write(dst, bytes).map_err(|e| Error::Publish(format!("{}: {e}", shown::path(dst))))
}

/// Rebuild data file `path` from BASE's lines, minus the tombstones and the
/// replaced records, plus the delta's, sorted; returns its lines.
fn rebuild_raw(r: &Rebuild<'_>, path: &str, stage: &Path, level: i32) -> Result<Vec<Vec<u8>>, Error> {
    let in_base = r.old.files.iter().any(|f| f.path == path);
    let mut lines = match in_base {
        true => delta::read_lines(&read(r.base, path).map_err(|e| usage(format!("BASE: {path}: {e}")))?)
            .map_err(|e| usage(format!("BASE: {path}: {e}")))?,
        false => Vec::new(),
    };
    let gone: BTreeSet<Sha256> =
        r.diff.tombstones.iter().filter(|t| t.target == path).map(|t| t.sha256).collect();
    let mut added: Vec<Vec<u8>> = Vec::new();
    for rf in r.diff.records.iter().filter(|rf| rf.target == path) {
        if !tree::safe_path(&rf.path) {
            return Err(tampered(format!("unsafe path {}", shown::name(&rf.path))));
        }
        let b = read(r.delta_dir, &rf.path).map_err(|e| tampered(format!("{}: {e}", rf.path)))?;
        added.extend(delta::read_lines(&b).map_err(|e| tampered(format!("{}: {e}", rf.path)))?);
    }
    let replaced: BTreeSet<(String, String)> =
        added.iter().map(|l| delta::record_key(l)).collect::<Result<_, _>>().map_err(tampered)?;
    let mut kept = Vec::new();
    for l in lines.drain(..) {
        let key = delta::record_key(&l).map_err(|e| usage(format!("BASE: {path}: {e}")))?;
        if gone.contains(&Sha256::of(&l)) || replaced.contains(&key) {
            continue;
        }
        kept.push(l);
    }
    kept.extend(added);
    sort_lines(&mut kept)?;
    let dst = stage.join(path);
    fs::create_dir_all(dst.parent().expect("in stage")).map_err(|e| Error::Publish(e.to_string()))?;
    encode_jsonl(kept.iter().map(Vec::as_slice), stage, &dst, level)
        .map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&dst))))?;
    Ok(kept)
}

/// Write normalised file `path` from its raw file's `lines`.
fn rebuild_normalized(lines: &[Vec<u8>], path: &str, stage: &Path, level: i32) -> Result<(), Error> {
    let mut rows = Vec::new();
    for l in lines {
        let v: Value = serde_json::from_slice(l).map_err(|e| tampered(format!("{path}: {e}")))?;
        rows.extend(normalize::rows(&v).iter().map(canon::to_vec));
    }
    let dst = stage.join(path);
    fs::create_dir_all(dst.parent().expect("in stage")).map_err(|e| Error::Publish(e.to_string()))?;
    encode_jsonl(rows.iter().map(Vec::as_slice), stage, &dst, level)
        .map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&dst))))?;
    Ok(())
}

/// Where each member of BASE's `mirror-<generation>.tar.zst` lies in it
/// (path → offset, length), when its frames are one per file of BASE's
/// tree, in path order, then the end frame (as the build writes it).
struct BaseFrames {
    tar: PathBuf,
    /// path → (offset, length) of its member frame
    at: BTreeMap<String, (u64, u64)>,
}

fn base_frames(base: &Path, old: &ExportJson) -> Option<BaseFrames> {
    let tar = base.join(format!("mirror-{}.tar.zst", old.generation));
    let f = fs::File::open(&tar).ok().filter(|f| f.metadata().is_ok_and(|m| m.is_file()))?;
    let len = f.metadata().ok()?.len();
    let lens = crate::formats::zstd_frames::frame_lengths(f, len).ok()?;
    let mut paths: Vec<&str> = old.files.iter().map(|f| f.path.as_str()).collect();
    paths.push(tree::EXPORT_JSON);
    paths.sort();
    if lens.len() != paths.len() + 1 {
        return None;
    }
    let mut at = 0;
    let mut map = BTreeMap::new();
    for (p, len) in paths.into_iter().zip(lens) {
        map.insert(p.to_string(), (at, len));
        at += len;
    }
    Some(BaseFrames { tar, at: map })
}

/// Write the tar: each file's member frame in path order, then the end.
/// A file BASE holds unchanged has the same frame as in BASE's tar, which
/// is copied (`reuse`) instead of encoded again. Returns the tar's SHA-256.
fn write_tar(
    stage: &Path,
    tar_path: &Path,
    files: &[TreeFile],
    reuse: Option<&BaseFrames>,
    unchanged: &dyn Fn(&TreeFile) -> bool,
) -> Result<Sha256, Error> {
    use std::io::{Read, Seek, Write};
    let perr = |e: std::io::Error| Error::Publish(format!("{}: {e}", shown::path(tar_path)));
    // hashed as written, with O_DIRECT where allowed (see cache::HashingFile):
    // the tar is about the size of the export and is synced before the swap
    let mut w = crate::cache::HashingFile::create_sha256(tar_path).map_err(perr)?;
    let mut base = match reuse {
        Some(r) => Some(fs::File::open(&r.tar).map_err(perr)?),
        None => None,
    };
    let frame = tempfile::NamedTempFile::new_in(stage).map_err(perr)?;
    for f in files {
        let old = reuse.and_then(|r| r.at.get(&f.path)).filter(|_| unchanged(f));
        match (old, base.as_mut()) {
            (Some(&(at, len)), Some(b)) => {
                b.seek(std::io::SeekFrom::Start(at)).map_err(perr)?;
                if copy_wide(&mut Read::by_ref(b).take(len), &mut w).map_err(perr)? != len {
                    return Err(perr(std::io::ErrorKind::UnexpectedEof.into()));
                }
            }
            _ => {
                member_frame(&f.path, &stage.join(&f.path), frame.path()).map_err(perr)?;
                copy_wide(&mut fs::File::open(frame.path()).map_err(perr)?, &mut w).map_err(perr)?;
            }
        }
    }
    drop(frame);
    w.write_all(&tar::end_frame(MEMBER_LEVEL).map_err(Error::Publish)?).map_err(perr)?;
    Ok(w.finish().map_err(perr)?.sha256())
}

/// What a rebuild reads: BASE, the delta (and its unpacked carried
/// files), both generations' `export.json`.
pub(super) struct Rebuild<'a> {
    pub base: &'a Path,
    pub delta_dir: &'a Path,
    pub carried: &'a Path,
    pub diff: &'a Diff,
    pub old: &'a ExportJson,
    pub new: &'a ExportJson,
    pub new_bytes: &'a [u8],
}

/// Write the new generation's every file into `stage`; returns the rebuilt data files.
pub(super) fn build_tree(r: &Rebuild<'_>, stage: &Path, hashed: &mut Hashed) -> Result<Vec<String>, Error> {
    let Rebuild { base, carried, diff, old, new, new_bytes, .. } = *r;
    let olds: BTreeMap<&str, Sha256> = old.files.iter().map(|f| (f.path.as_str(), f.sha256)).collect();
    let level = new.compression_level as i32;
    let mut files: Vec<TreeFile> = new.files.clone();
    files.push(TreeFile {
        plaintext: None,
        path: tree::EXPORT_JSON.into(),
        sha256: Sha256::of(new_bytes),
        length: new_bytes.len() as u64,
    });
    files.sort();
    let is_carried: BTreeSet<&str> = diff.carried.iter().map(String::as_str).collect();
    // carried and unchanged files are placed now; data files to rebuild become jobs
    let t = std::time::Instant::now();
    let mut raws: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut norms: Vec<&str> = Vec::new();
    let mut placed: Vec<(&str, bool)> = Vec::new();
    for f in &files {
        let path = f.path.as_str();
        if !tree::safe_path(path) {
            return Err(tampered(format!("unsafe path {}", shown::name(path))));
        }
        if is_carried.contains(path) {
            placed.push((path, true));
        } else if olds.get(path) == Some(&f.sha256) {
            placed.push((path, false));
        } else if path.starts_with("data/raw/") {
            raws.insert(path, None);
        } else if path.starts_with("data/normalized/advisories/") {
            norms.push(path);
        } else {
            return Err(tampered(format!("{path} is neither carried, in BASE, nor made from records")));
        }
    }
    // every folder first (a few hundred), then the files in parallel (thousands)
    crate::ops::publish::make_dirs(
        stage,
        files.iter().flat_map(|f| {
            [
                f.path.clone(),
                tree::target_file(&f.path, &f.sha256),
                format!("oci/{}", crate::formats::oci::blob_path(&f.sha256)),
            ]
        }),
    )?;
    {
        use rayon::prelude::*;
        placed.par_iter().try_for_each(|&(path, from_delta)| {
            if from_delta {
                let bytes = read(carried, path).map_err(|e| tampered(format!("{path}: {e}")))?;
                fs::write(stage.join(path), bytes)
                    .map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&stage.join(path)))))
            } else {
                link_or_copy(base, path, &stage.join(path))
            }
        })?;
    }
    tracing::debug!("apply: {} carried and unchanged files placed in {:?}", placed.len(), t.elapsed());
    // a normalised file is made from its raw sibling's lines, in the same job when both change
    let mut lone = Vec::new();
    for n in norms {
        let raw = format!("data/raw/advisories/{}", &n["data/normalized/advisories/".len()..]);
        match raws.get_mut(raw.as_str()) {
            Some(slot) => *slot = Some(n),
            None => lone.push(n),
        }
    }
    // jobs in parallel: each holds one data file's lines at a time
    let done: Vec<Vec<String>> = {
        use rayon::prelude::*;
        let jobs: Vec<(Option<&str>, Option<&str>)> =
            raws.iter().map(|(r, n)| (Some(*r), *n)).chain(lone.iter().map(|n| (None, Some(*n)))).collect();
        jobs.par_iter()
            .map(|&(raw, norm)| -> Result<Vec<String>, Error> {
                let mut made = Vec::new();
                let lines = match raw {
                    Some(raw) => {
                        let lines = rebuild_raw(r, raw, stage, level)?;
                        made.push(raw.to_string());
                        lines
                    }
                    None => {
                        let n = norm.expect("a lone normalised file");
                        let raw =
                            format!("data/raw/advisories/{}", &n["data/normalized/advisories/".len()..]);
                        delta::read_lines(
                            &fs::read(stage.join(&raw)).map_err(|e| tampered(format!("{raw}: {e}")))?,
                        )
                        .map_err(tampered)?
                    }
                };
                if let Some(n) = norm {
                    rebuild_normalized(&lines, n, stage, level)?;
                    made.push(n.to_string());
                }
                Ok(made)
            })
            .collect::<Result<_, _>>()?
    };
    let mut rebuilt: Vec<String> = done.into_iter().flatten().collect();
    rebuilt.sort_by_key(|p| (p.starts_with("data/normalized/"), p.clone()));
    tracing::debug!("apply: {} data files rebuilt at {:?}", rebuilt.len(), t.elapsed());
    // every tree file as export.json lists it (hashed in parallel, once per inode)
    hashed.prefetch(stage)?;
    tracing::debug!("apply: tree hashed at {:?}", t.elapsed());
    for f in &files {
        let (sha, len) = hashed.of(&stage.join(&f.path))?;
        if sha != f.sha256 || len != f.length {
            return Err(tampered(format!("{} rebuilt to other bytes than export.json lists", f.path)));
        }
    }
    // TUF targets and OCI blobs: the same files under their digests, hard-linked (as publishing does)
    let mut names = BTreeSet::new();
    let mut links = Vec::new();
    for f in &files {
        for rel in [
            tree::target_file(&f.path, &f.sha256),
            format!("oci/{}", crate::formats::oci::blob_path(&f.sha256)),
        ] {
            // two tree files with the same bytes: one OCI blob
            if names.insert(rel.clone()) {
                links.push((f.path.as_str(), rel));
            }
        }
    }
    {
        use rayon::prelude::*;
        links.par_iter().try_for_each(|(src, rel)| {
            let dst = stage.join(rel);
            fs::hard_link(stage.join(src), &dst)
                .map_err(|e| Error::Publish(format!("{}: {e}", shown::path(&dst))))
        })?;
    }
    tracing::debug!("apply: TUF and OCI names linked at {:?}", t.elapsed());
    for (path, bytes) in oci_files(&files, new_bytes, new.generation, &new.created_at) {
        write(stage, &format!("oci/{path}"), &bytes)?;
    }
    tracing::debug!("apply: tree files placed and checked");
    // the tar, reusing BASE's frames of unchanged files; checked against the
    // signed checksums.txt now, and encoded afresh should a reused frame be wrong
    let tar_name = format!("mirror-{}.tar.zst", new.generation);
    let tar_path = stage.join(&tar_name);
    let listed = fs::read_to_string(carried.join("checksums.txt"))
        .map_err(|e| tampered(format!("checksums.txt: {e}")))
        .and_then(|t| manifest::parse_checksums(&t).map_err(tampered))?;
    let want = listed.iter().find(|(n, _)| *n == tar_name).map(|(_, d)| *d);
    let unchanged = |f: &TreeFile| olds.get(f.path.as_str()) == Some(&f.sha256);
    let reuse = base_frames(base, old);
    let mut sha = write_tar(stage, &tar_path, &files, reuse.as_ref(), &unchanged)?;
    if reuse.is_some() && Some(sha) != want {
        sha = write_tar(stage, &tar_path, &files, None, &unchanged)?;
    }
    tracing::debug!("apply: tar written at {:?}", t.elapsed());
    if let Ok(m) = fs::metadata(&tar_path) {
        use std::os::unix::fs::MetadataExt;
        hashed.0.insert((m.dev(), m.ino()), (sha, m.len()));
    }
    // the rest of the carried files (manifest, seal, TUF metadata)
    for rel in &diff.carried {
        if !tree::safe_path(rel) {
            return Err(tampered(format!("unsafe path {}", shown::name(rel))));
        }
        if !stage.join(rel).exists() {
            write(stage, rel, &read(carried, rel).map_err(|e| tampered(format!("{rel}: {e}")))?)?;
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
pub(super) fn final_check(stage: &Path, hashed: &mut Hashed) -> Result<usize, Error> {
    let text = fs::read_to_string(stage.join("checksums.txt"))
        .map_err(|e| tampered(format!("checksums.txt: {e}")))?;
    let listed: BTreeMap<String, Sha256> =
        manifest::parse_checksums(&text).map_err(tampered)?.into_iter().collect();
    hashed.prefetch(stage)?;
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
        let (sha, _) = hashed.of(e.path())?;
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
pub(super) fn swap(staging: tempfile::TempDir, dest: &Path, replace: bool) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let stage = staging.keep();
    let perr = |p: &Path, e: std::io::Error| Error::Publish(format!("{}: {e}", shown::path(p)));
    for e in walkdir::WalkDir::new(&stage) {
        let e = e.map_err(|e| Error::Publish(e.to_string()))?;
        let mode = if e.file_type().is_dir() { 0o755 } else { 0o644 };
        // files linked from BASE have their mode already: leave their inodes alone
        if e.metadata().map_or(true, |m| m.permissions().mode() & 0o7777 != mode) {
            fs::set_permissions(e.path(), fs::Permissions::from_mode(mode)).map_err(|x| perr(e.path(), x))?;
        }
    }
    // everything staged durable before the swap (one syncfs, not an fsync per file)
    crate::ops::publish::sync_fs(&stage).map_err(|e| perr(&stage, e))?;
    tracing::debug!("apply: staged folder durable");
    crate::crashpoint::hit("apply-staged");
    let result = if replace {
        crate::ops::publish::exchange(&stage, dest).map_err(|e| perr(dest, e))
    } else {
        fs::rename(&stage, dest).map_err(|e| perr(dest, e))
    };
    if result.is_err() {
        let _ = fs::remove_dir_all(&stage);
        return result;
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::ops::publish::sync_dir(parent);
    }
    crate::crashpoint::hit("apply-swapped");
    // the new generation is live: BASE's old files (now at the staging name) go;
    // a failure here leaves a folder the next apply removes, not a failed apply
    if replace {
        if let Err(e) = fs::remove_dir_all(&stage) {
            tracing::warn!("{}: {e}; the next mirror apply here removes it", shown::path(&stage));
        }
    }
    Ok(())
}

/// Folder names `apply` stages in, beside its destination.
pub(super) const STAGING_PREFIXES: [&str; 2] = [".apply-carried-", ".apply-"];

/// Lock `parent` (the destination's folder) against another `apply` there,
/// then remove what a crashed one left: real folders named exactly
/// `.apply-<6 letters or digits>` or `.apply-carried-<6>`.
pub(super) fn lock_and_clean(parent: &Path) -> Result<fs::File, Error> {
    let perr = |e: std::io::Error| Error::Publish(format!("{}: {e}", shown::path(parent)));
    let lock = fs::File::open(parent).map_err(perr)?;
    lock.lock().map_err(perr)?;
    for e in fs::read_dir(parent).map_err(perr)?.filter_map(|e| e.ok()) {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = STAGING_PREFIXES.iter().any(|p| {
            name.strip_prefix(p).is_some_and(|r| r.len() == 6 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
        });
        if ours && e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok(lock)
}
