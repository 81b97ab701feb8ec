//! Publishing an export: `out/<profile>/` swapped in atomically.
//!
//! Under `out/.lock` (an exclusive file lock, so two builds never publish
//! at once): the files are copied from the CAS (verified) into
//! `out/.staging-<profile>-<random>/`, fsynced, then exchanged with the
//! live folder by `renameat2(RENAME_EXCHANGE)` (or renamed into place when
//! there is none), and the old copy is deleted. A crash leaves either the
//! old or the new folder live, never a mix; leftover staging folders are
//! removed by the next publisher. An export whose files already match is
//! left untouched (no rewrite, same inodes).

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

fn up_to_date(dir: &Path, files: &[(String, OutputRef)]) -> bool {
    let Ok(read) = fs::read_dir(dir) else {
        return false;
    };
    let mut names: Vec<String> =
        read.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
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
        for (name, o) in files {
            let p = staging.join(name);
            let mut f = fs::File::create(&p).map_err(|e| perr(&p, e))?;
            cache.copy_to(&o.digest, &mut f)?;
            f.sync_all().map_err(|e| perr(&p, e))?;
        }
        // a fixed mode whatever the umask: exports are world-readable
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&staging, fs::Permissions::from_mode(0o755)).map_err(|e| perr(&staging, e))?;
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
