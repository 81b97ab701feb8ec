//! Publishing an export: `out/<profile>/` swapped in atomically.
//!
//! Under `out/.lock` (an exclusive file lock, so two builds never publish
//! at once), each file is placed in `out/.staging-<profile>-<random>/`
//! without copying where it can: a hard link to the live export's file of
//! the same name and digest, else a hard link to the CAS blob after
//! reading it through (verified; not needed for a blob this process
//! stored from bytes it hashed itself), else (another file system, a store
//! with no local file) a verified copy. Files are placed in parallel. Sharing inodes is safe because nothing
//! writes an export or a CAS blob in place (blobs are renamed over or
//! removed; exports are swapped whole); a file changed in place by hand
//! fails its digest where it is next read and is rebuilt. Two names of the
//! same blob are hard links to one file. The stage is made durable (one
//! `syncfs`), then exchanged with the live folder by
//! `renameat2(RENAME_EXCHANGE)` (or renamed into place when there is
//! none), and the old copy is moved to `out/.generations/<profile>/<n>/`
//! (its generation number; deleted with `keep-generations = 0`), then
//! `current.json` there records the new generation and generations beyond
//! `keep-generations` are pruned (see [`super::generations`]). Deleting old
//! copies (thousands of files for a mirror) runs on a [`Background`]
//! thread that keeps `out/.lock` while the build goes on; the build waits
//! for it before it returns and before it publishes again. A crash
//! leaves either the old or the new folder live, never a mix; leftover
//! staging folders are removed by the next publisher; a crash before the
//! record update only loses the kept copy (the next publisher reads the
//! generation back from the export). An export whose files already match
//! is left untouched (no rewrite, same inodes) and keeps its generation.
//! Published names may hold folders (`oci/blobs/sha256/<hex>`), never `..`.
//!
//! Never replaced: anything at `out/<profile>` that is not a previous
//! export of this profile (a file, a symlink, a folder whose
//! `manifest.json` does not name this profile and kind; see
//! [`super::layout`]): that is an invalid layout (exit 2), nothing is
//! touched. Cleanup removes only this profile's own leftovers: real
//! folders named exactly `.staging-<profile>-<6 letters or digits>`.
//! `out/.lock` is opened without following a symlink and must be a
//! regular file. Every error names the path in `out/` that failed (a
//! failed write into the export is not blamed on the cache blob read).

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::cache::action::OutputRef;
use crate::cache::Cache;
use crate::digest::Digest;
use crate::error::Error;

use super::generations;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Published {
    Published,
    UpToDate,
}

fn perr(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Publish(format!("{}: {e}", crate::shown::path(path)))
}

/// Length of the random suffix of staging folder names.
const STAGING_RAND: usize = 6;

/// Whether `name` is a staging folder name of `profile` (ours to clean).
fn is_own_staging(name: &str, profile: &str) -> bool {
    name.strip_prefix(".staging-")
        .and_then(|r| r.strip_prefix(profile))
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|r| r.len() == STAGING_RAND && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Open (creating) and lock `out/.lock`; a symlink or non-file there is refused.
fn lock_out(out_dir: &Path) -> Result<fs::File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let lock_path = out_dir.join(".lock");
    let lock = fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&lock_path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::EISDIR) => {
                Error::Usage(format!("{}: not a regular file", crate::shown::path(&lock_path)))
            }
            _ => perr(&lock_path, e),
        })?;
    match lock.metadata() {
        Ok(m) if m.is_file() => {}
        _ => return Err(Error::Usage(format!("{}: not a regular file", crate::shown::path(&lock_path)))),
    }
    lock.lock().map_err(|e| perr(&lock_path, e))?;
    Ok(lock)
}

/// A writer that keeps its own error, so a failed write into `out/` is
/// told apart from a failed read of the cache blob.
struct Recording<'a> {
    f: &'a mut fs::File,
    err: Option<std::io::Error>,
}

impl std::io::Write for Recording<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.f.write(buf).inspect_err(|e| {
            if e.kind() != std::io::ErrorKind::Interrupted {
                self.err = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.f.flush()
    }
}

fn blake3_file(path: &Path) -> Option<Digest> {
    let mut h = blake3::Hasher::new();
    h.update_reader(fs::File::open(path).ok()?).ok()?;
    Some(Digest(*h.finalize().as_bytes()))
}

/// Every file below `dir`, as `/`-separated relative paths.
fn list_files(dir: &Path) -> Option<Vec<String>> {
    if !dir.is_dir() {
        return None;
    }
    let mut names = Vec::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.ok()?;
        if !e.file_type().is_dir() {
            names.push(e.path().strip_prefix(dir).ok()?.to_string_lossy().into_owned());
        }
    }
    Some(names)
}

/// Digests of files already read, by inode: the names of one hard-linked
/// file (a mirror's tree, `tuf/targets/` and `oci/blobs/` names) are hashed once.
#[derive(Default)]
struct Hashed(std::collections::HashMap<(u64, u64), Option<Digest>>);

impl Hashed {
    /// Whether `p` is a regular file (not a symlink) holding exactly `o`.
    fn holds(&mut self, p: &Path, o: &OutputRef) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(m) = fs::symlink_metadata(p) else { return false };
        if !m.is_file() || m.len() != o.size {
            return false;
        }
        *self.0.entry((m.dev(), m.ino())).or_insert_with(|| blake3_file(p)) == Some(o.digest)
    }
}

/// The names whose live file already holds the blob to publish there
/// (the first name of each blob; the others are linked to it). Hashed in
/// parallel: this reads the whole live export.
fn reusable<'a>(live: &Path, files: &'a [(String, OutputRef)]) -> std::collections::HashSet<&'a str> {
    use rayon::prelude::*;
    let mut seen = std::collections::HashSet::new();
    let firsts: Vec<&(String, OutputRef)> = files.iter().filter(|(_, o)| seen.insert(o.digest)).collect();
    firsts
        .par_iter()
        .filter(|(n, o)| Hashed::default().holds(&live.join(n), o))
        .map(|(n, _)| n.as_str())
        .collect()
}

pub(crate) fn up_to_date(dir: &Path, files: &[(String, OutputRef)]) -> bool {
    let Some(mut names) = list_files(dir) else {
        return false;
    };
    names.sort();
    let mut want: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    want.sort();
    let mut hashed = Hashed::default();
    names == want && files.iter().all(|(n, o)| hashed.holds(&dir.join(n), o))
}

/// Swap two paths atomically (`renameat2(RENAME_EXCHANGE)`).
pub(crate) fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: both are valid NUL-terminated paths; renameat2 only reads them.
    let rc = unsafe {
        libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Flush everything written to `p`'s file system: one `syncfs` instead of
/// an fsync per file (each of which commits the journal on its own).
pub(crate) fn sync_fs(p: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(p)?;
    // SAFETY: a valid open descriptor; syncfs only flushes.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub(crate) fn sync_dir(p: &Path) {
    if let Ok(f) = fs::File::open(p) {
        let _ = f.sync_all();
    }
}

/// `out/.generations/<profile>/`, created (mode 0755) if missing; anything
/// there that is not a real folder is refused.
fn generations_dir(out_dir: &Path, profile: &str) -> Result<std::path::PathBuf, Error> {
    use std::os::unix::fs::PermissionsExt;
    let top = out_dir.join(generations::DIR);
    let dir = generations::profile_dir(out_dir, profile);
    for d in [&top, &dir] {
        match fs::symlink_metadata(d) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "{}: not a folder (it holds earlier generations of exports); move it away",
                    crate::shown::path(d)
                )))
            }
            Err(_) => {
                fs::create_dir(d).map_err(|e| perr(d, e))?;
                fs::set_permissions(d, fs::Permissions::from_mode(0o755)).map_err(|e| perr(d, e))?;
            }
        }
    }
    Ok(dir)
}

/// Make every folder below `root` that the relative `paths` need, parents
/// first (a few hundred folders for thousands of files, each made once);
/// returns them, relative. Folders already there are fine.
pub(crate) fn make_dirs(
    root: &Path,
    paths: impl Iterator<Item = String>,
) -> Result<std::collections::BTreeSet<std::path::PathBuf>, Error> {
    let mut dirs = std::collections::BTreeSet::new();
    for p in paths {
        let mut d = Path::new(&p);
        while let Some(parent) = d.parent().filter(|x| !x.as_os_str().is_empty()) {
            if !dirs.insert(parent.to_path_buf()) {
                break;
            }
            d = parent;
        }
    }
    for d in &dirs {
        let p = root.join(d);
        match fs::create_dir(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(perr(&p, e)),
            _ => {}
        }
    }
    Ok(dirs)
}

/// Remove a folder and everything below it, its subfolders in parallel (a
/// mirror generation is thousands of files in a few hundred folders).
/// Best effort, as `rm -rf`.
fn remove_tree(dir: &Path) {
    use rayon::prelude::*;
    let mut subs = Vec::new();
    if let Ok(read) = fs::read_dir(dir) {
        for e in read.filter_map(|e| e.ok()) {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            match fs::read_dir(e.path()) {
                Ok(inner) if is_dir => subs.extend(inner.filter_map(|i| i.ok()).map(|i| i.path())),
                _ => {}
            }
        }
    }
    subs.par_iter().for_each(|p| {
        let _ = if p.is_dir() && !p.is_symlink() { fs::remove_dir_all(p) } else { fs::remove_file(p) };
    });
    let _ = fs::remove_dir_all(dir);
}

/// Remove kept generations beyond the newest `keep` before `current`, and
/// records whose folder is gone. Best effort: a leftover is removed next time.
fn prune(gens: &Path, current: u64, keep: u32) {
    let older: Vec<u64> = generations::kept_numbers(gens).into_iter().filter(|n| *n < current).collect();
    let cut = older.len().saturating_sub(keep as usize);
    for n in &older[..cut] {
        remove_tree(&gens.join(n.to_string()));
    }
    let Ok(read) = fs::read_dir(gens) else { return };
    for e in read.filter_map(|e| e.ok()) {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let orphan = name
            .strip_suffix(".json")
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .is_some_and(|n| !gens.join(n).is_dir());
        if orphan || name.starts_with(".tmp-") {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Publish `files` (published name → blob) as `out_dir/<profile>/`, an
/// export of kind `kind`.
/// `keep` earlier generations stay under `out/.generations/<profile>/`
/// (see [`super::generations`]).
pub fn publish(
    out_dir: &Path,
    profile: &str,
    kind: &str,
    keep: u32,
    files: &[(String, OutputRef)],
    cache: &Cache,
    bg: &Background,
) -> Result<Published, Error> {
    fs::create_dir_all(out_dir).map_err(|e| perr(out_dir, e))?;
    bg.wait();
    let lock = lock_out(out_dir)?;
    let target = out_dir.join(profile);
    // clean leftovers of this profile's crashed publishers (we hold the lock: none is running)
    if let Ok(read) = fs::read_dir(out_dir) {
        for e in read.filter_map(|e| e.ok()) {
            let own = e.file_name().to_str().is_some_and(|n| is_own_staging(n, profile));
            if own && e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    let exists = super::layout::previous_export(&target, profile, kind).map_err(|why| {
        Error::Usage(format!(
            "{}: not replacing it: {why}; move it away or pick another out",
            crate::shown::path(&target)
        ))
    })?;
    let gens = generations_dir(out_dir, profile)?;
    // the live export's generation, read back from it (and recorded if it was not)
    let prev = if exists { generations::live(out_dir, profile, kind) } else { None };
    if exists && up_to_date(&target, files) {
        if let Some((rec, false)) = &prev {
            let current = gens.join(generations::CURRENT);
            generations::write_record(&gens, generations::CURRENT, rec).map_err(|e| perr(&current, e))?;
        }
        return Ok(Published::UpToDate);
    }
    let next = match &prev {
        Some((r, _)) => r.generation + 1,
        None => {
            let recorded = generations::read_record(&gens.join(generations::CURRENT), profile);
            let kept = generations::kept_numbers(&gens).last().copied().unwrap_or(0);
            recorded.map_or(0, |r| r.generation).max(kept) + 1
        }
    };
    // the previous export is kept as its generation (none kept with keep-generations = 0)
    let keep_prev = prev.as_ref().filter(|_| keep > 0).map(|(r, _)| r);
    let staging = tempfile::Builder::new()
        .prefix(&format!(".staging-{profile}-"))
        .rand_bytes(STAGING_RAND)
        .tempdir_in(out_dir)
        .map_err(|e| perr(out_dir, e))?
        .keep();
    let result = (|| {
        use std::os::unix::fs::PermissionsExt;
        // the same blob under two names (db.tar.gz and its OCI layer) is one file, hard-linked
        let mut first: std::collections::HashMap<Digest, &str> = Default::default();
        // a file the live export already holds under the same name is hard-linked
        // from it, not copied: a nightly that changed ten files writes ten files
        let t = std::time::Instant::now();
        let reusable = if exists { reusable(&target, files) } else { Default::default() };
        tracing::debug!("{profile}: {} live files reusable, checked in {:?}", reusable.len(), t.elapsed());
        for (name, o) in files {
            if name.starts_with('/') || name.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
                let name = crate::shown::name(name);
                return Err(Error::Publish(format!("refusing to publish outside the export: \"{name}\"")));
            }
            first.entry(o.digest).or_insert(name.as_str());
        }
        let dirs = make_dirs(&staging, files.iter().map(|(n, _)| n.clone()))?;
        // each blob's first name, then its other names linked to it; in
        // parallel (thousands of links on a mirror)
        let place = |name: &str, o: &OutputRef| -> Result<(), Error> {
            let p = staging.join(name);
            let f = first[&o.digest];
            let from_live = || reusable.contains(name) && fs::hard_link(target.join(name), &p).is_ok();
            if f != name {
                fs::hard_link(staging.join(f), &p).map_err(|e| perr(&p, e))?;
            } else if from_live() || cache.link_to(&o.digest, &p).map_err(Error::Cache)? {
                // linked
            } else {
                let mut f = fs::File::create(&p).map_err(|e| perr(&p, e))?;
                let mut w = Recording { f: &mut f, err: None };
                if let Err(e) = cache.copy_to(&o.digest, &mut w) {
                    return Err(match w.err {
                        Some(werr) => perr(&p, werr),
                        None => Error::Cache(e),
                    });
                }
            }
            // hard links share the mode: most files are 0644 already, and
            // a chmod of each would dirty every inode of the export
            let m = fs::symlink_metadata(&p).map_err(|e| perr(&p, e))?;
            if m.permissions().mode() & 0o7777 != 0o644 {
                fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).map_err(|e| perr(&p, e))?;
            }
            Ok(())
        };
        {
            use rayon::prelude::*;
            let (firsts, others): (Vec<_>, Vec<_>) =
                files.iter().partition(|(n, o)| first[&o.digest] == n.as_str());
            firsts.par_iter().try_for_each(|(n, o)| place(n, o))?;
            others.par_iter().try_for_each(|(n, o)| place(n, o))?;
        }
        // a fixed mode whatever the umask: exports are world-readable
        fs::set_permissions(&staging, fs::Permissions::from_mode(0o755)).map_err(|e| perr(&staging, e))?;
        for d in &dirs {
            let p = staging.join(d);
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).map_err(|e| perr(&p, e))?;
        }
        tracing::debug!("{profile}: staged after {:?}", t.elapsed());
        // every staged file and folder durable before the swap
        sync_fs(&staging).map_err(|e| perr(&staging, e))?;
        tracing::debug!("{profile}: synced after {:?}", t.elapsed());
        crate::crashpoint::hit("publish-staged");
        if let Some(r) = keep_prev {
            // its record first: a crash after the swap then loses at most the kept copy
            let name = format!("{}.json", r.generation);
            generations::write_record(&gens, &name, r).map_err(|e| perr(&gens.join(&name), e))?;
        }
        if exists {
            exchange(&staging, &target).map_err(|e| perr(&target, e))?;
            sync_dir(out_dir);
            crate::crashpoint::hit("publish-swapped");
            // without a generation to keep, the old copy (now in staging)
            // is removed after the build goes on
            if let Some(r) = keep_prev {
                let dest = gens.join(r.generation.to_string());
                if fs::symlink_metadata(&dest).is_ok() {
                    fs::remove_dir_all(&dest).map_err(|e| perr(&dest, e))?;
                }
                fs::rename(&staging, &dest).map_err(|e| perr(&dest, e))?;
                sync_dir(&gens);
            }
        } else {
            fs::rename(&staging, &target).map_err(|e| perr(&target, e))?;
        }
        sync_dir(out_dir);
        crate::crashpoint::hit("publish-live");
        let current = gens.join(generations::CURRENT);
        let rec = generations::describe(&target, profile, kind, next)
            .ok_or_else(|| perr(&target, "the new export has no manifest.json"))?;
        generations::write_record(&gens, generations::CURRENT, &rec).map_err(|e| perr(&current, e))?;
        sync_dir(&gens);
        tracing::debug!("{profile}: swapped after {:?}", t.elapsed());
        Ok(Published::Published)
    })();
    match result {
        Err(_) => {
            let _ = fs::remove_dir_all(&staging);
        }
        Ok(_) => {
            // removing old files (thousands on a mirror) is not needed by
            // anything after: it runs while the build goes on, under the
            // lock of out/, and ends before the build returns
            let leftover = staging.is_dir().then_some(staging);
            bg.spawn(move || {
                let _lock = lock;
                if let Some(dir) = leftover {
                    remove_tree(&dir);
                }
                prune(&gens, next, keep);
            });
        }
    }
    result
}

/// Work a publisher leaves running (removing old generations) while the
/// build goes on; joined by [`Background::wait`] and when dropped, so it
/// ends before the build returns and before the next publish starts.
#[derive(Default)]
pub struct Background(std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>);

impl Background {
    fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        // best effort: without a thread, what is left is removed next time
        if let Ok(h) = std::thread::Builder::new().name("publish-cleanup".into()).spawn(f) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(h);
        }
    }

    /// Wait for everything spawned so far.
    pub fn wait(&self) {
        let handles = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.wait();
    }
}
