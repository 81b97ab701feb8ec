//! Publishing an export: `out/<profile>/` swapped in atomically.
//!
//! Under `out/.lock` (an exclusive file lock, so two builds never publish
//! at once): the files are copied from the CAS (verified) into
//! `out/.staging-<profile>-<random>/`, fsynced, then exchanged with the
//! live folder by `renameat2(RENAME_EXCHANGE)` (or renamed into place when
//! there is none), and the old copy is deleted. A crash leaves either the
//! old or the new folder live, never a mix; leftover staging folders are
//! removed by the next publisher. An export whose files already match is
//! left untouched (no rewrite, same inodes). Published names may hold
//! folders (`oci/blobs/sha256/<hex>`), never `..`; two names of the same
//! blob are hard links to one file.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::cache::action::OutputRef;
use crate::cache::Cache;
use crate::digest::Digest;
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Published {
    Published,
    UpToDate,
}

fn perr(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Publish(format!("{}: {e}", path.display()))
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

fn up_to_date(dir: &Path, files: &[(String, OutputRef)]) -> bool {
    let Some(mut names) = list_files(dir) else {
        return false;
    };
    names.sort();
    let mut want: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    want.sort();
    names == want
        && files.iter().all(|(n, o)| {
            let p = dir.join(n);
            fs::metadata(&p).map(|m| m.len() == o.size).unwrap_or(false) && blake3_file(&p) == Some(o.digest)
        })
}

fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
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

fn sync_dir(p: &Path) {
    if let Ok(f) = fs::File::open(p) {
        let _ = f.sync_all();
    }
}

/// Publish `files` (published name → blob) as `out_dir/<profile>/`.
pub fn publish(
    out_dir: &Path,
    profile: &str,
    files: &[(String, OutputRef)],
    cache: &Cache,
) -> Result<Published, Error> {
    fs::create_dir_all(out_dir).map_err(|e| perr(out_dir, e))?;
    let lock_path = out_dir.join(".lock");
    let lock = fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| perr(&lock_path, e))?;
    lock.lock().map_err(|e| perr(&lock_path, e))?;
    let target = out_dir.join(profile);
    // clean leftovers of crashed publishers (we hold the lock: none is running)
    if let Ok(read) = fs::read_dir(out_dir) {
        for e in read.filter_map(|e| e.ok()) {
            if e.file_name().to_string_lossy().starts_with(".staging-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    if up_to_date(&target, files) {
        return Ok(Published::UpToDate);
    }
    let staging = tempfile::Builder::new()
        .prefix(&format!(".staging-{profile}-"))
        .tempdir_in(out_dir)
        .map_err(|e| perr(out_dir, e))?
        .keep();
    let result = (|| {
        use std::os::unix::fs::PermissionsExt;
        // the same blob under two names (db.tar.gz and its OCI layer) is one file, hard-linked
        let mut written: std::collections::HashMap<Digest, std::path::PathBuf> = Default::default();
        let mut dirs = std::collections::BTreeSet::new();
        for (name, o) in files {
            if name.starts_with('/') || name.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
                return Err(Error::Publish(format!("refusing to publish outside the export: {name:?}")));
            }
            let p = staging.join(name);
            if let Some(parent) = p.parent().filter(|d| *d != staging.as_path()) {
                fs::create_dir_all(parent).map_err(|e| perr(parent, e))?;
                let mut d = parent.to_path_buf();
                while d != staging {
                    dirs.insert(d.clone());
                    d = d.parent().expect("inside staging").to_path_buf();
                }
            }
            if let Some(first) = written.get(&o.digest) {
                fs::hard_link(first, &p).map_err(|e| perr(&p, e))?;
                continue;
            }
            let mut f = fs::File::create(&p).map_err(|e| perr(&p, e))?;
            cache.copy_to(&o.digest, &mut f)?;
            f.sync_all().map_err(|e| perr(&p, e))?;
            written.insert(o.digest, p);
        }
        // a fixed mode whatever the umask: exports are world-readable
        fs::set_permissions(&staging, fs::Permissions::from_mode(0o755)).map_err(|e| perr(&staging, e))?;
        for d in dirs.iter().rev() {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).map_err(|e| perr(d, e))?;
            sync_dir(d);
        }
        for (name, _) in files {
            let p = staging.join(name);
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).map_err(|e| perr(&p, e))?;
        }
        sync_dir(&staging);
        crate::crashpoint::hit("publish-staged");
        if target.exists() {
            exchange(&staging, &target).map_err(|e| perr(&target, e))?;
            sync_dir(out_dir);
            crate::crashpoint::hit("publish-swapped");
            fs::remove_dir_all(&staging).map_err(|e| perr(&staging, e))?;
        } else {
            fs::rename(&staging, &target).map_err(|e| perr(&target, e))?;
        }
        sync_dir(out_dir);
        Ok(Published::Published)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}
