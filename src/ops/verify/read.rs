//! How `verify` opens the files of an export it is checking.
//!
//! The export is untrusted input, so every open here:
//! - takes a path from the export (checksums, manifest, provenance) only
//!   if it is relative and stays inside (no `..`, `.`, empty or absolute
//!   parts), and resolves it one component at a time from the export
//!   folder with `O_NOFOLLOW`, so no symlink, even in a parent folder,
//!   leads outside;
//! - refuses anything but a regular file (FIFO, device, socket, symlink)
//!   before opening it, then again on the opened descriptor (`O_NONBLOCK`,
//!   so a FIFO swapped in between cannot block);
//! - checks the size from `fstat` against the caller's cap *before*
//!   reading, and never reads more than the cap even if the file grows.
//!
//! Errors are short reasons (the caller names the file).

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A relative path inside the export: no `..`, `.`, empty or absolute parts.
pub fn safe_path(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\0')
        && name.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

fn kind(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => "a folder",
        libc::S_IFLNK => "a symbolic link",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR | libc::S_IFBLK => "a device",
        libc::S_IFSOCK => "a socket",
        _ => "a special file",
    }
}

fn openat(dirfd: &File, name: &str, flags: libc::c_int) -> Result<File, String> {
    let c = CString::new(name).map_err(|_| "the path contains a NUL byte".to_string())?;
    // SAFETY: plain syscalls on a valid descriptor and a NUL-terminated name;
    // a returned descriptor is owned by the File from then on.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatat(dirfd.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    let want_dir = flags & libc::O_DIRECTORY != 0;
    let fmt = st.st_mode & libc::S_IFMT;
    if want_dir && fmt != libc::S_IFDIR {
        return Err(format!("{name} is not a folder but {}", kind(st.st_mode)));
    }
    if !want_dir && fmt != libc::S_IFREG {
        return Err(format!("not a regular file ({})", kind(st.st_mode)));
    }
    let fd = unsafe {
        libc::openat(
            dirfd.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Open `rel` inside `dir` as described in the module doc; returns the
/// file and its size.
pub fn open(dir: &Path, rel: &str) -> Result<(File, u64), String> {
    if !safe_path(rel) {
        return Err("the path leads outside the export".into());
    }
    let mut cur = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| format!("cannot open the export folder: {e}"))?;
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        cur = openat(&cur, part, if last { 0 } else { libc::O_DIRECTORY })?;
    }
    let meta = cur.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    Ok((cur, meta.len()))
}

/// Human form of a byte count (`64 MiB`, `1.5 KiB`, `12 bytes`).
pub fn size(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (u, s) in UNITS {
        if n >= s {
            return if n.is_multiple_of(s) {
                format!("{} {u}", n / s)
            } else {
                format!("{:.1} {u}", n as f64 / s as f64)
            };
        }
    }
    format!("{n} bytes")
}

/// The whole of `rel`, at most `cap` bytes (else an error naming both sizes).
pub fn read(dir: &Path, rel: &str, cap: u64) -> Result<Vec<u8>, String> {
    let (f, len) = open(dir, rel)?;
    let too_big = |n: u64| format!("{} is over the {} limit for this file", size(n), size(cap));
    if len > cap {
        return Err(too_big(len));
    }
    let mut b = Vec::with_capacity(len as usize);
    f.take(cap + 1).read_to_end(&mut b).map_err(|e| e.to_string())?;
    if b.len() as u64 > cap {
        return Err(too_big(b.len() as u64));
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_regular_file_inside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/f"), b"hello").unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        std::os::unix::fs::symlink("sub/f", d.path().join("flink")).unwrap();
        assert_eq!(read(d.path(), "sub/f", 5).unwrap(), b"hello");
        assert!(read(d.path(), "sub/f", 4).unwrap_err().contains("over the 4 bytes limit"));
        assert!(read(d.path(), "../x", 9).unwrap_err().contains("outside"));
        assert!(read(d.path(), "/etc/passwd", 9).unwrap_err().contains("outside"));
        assert!(read(d.path(), "link/passwd", 1 << 20).unwrap_err().contains("symbolic link"));
        assert!(read(d.path(), "flink", 9).unwrap_err().contains("symbolic link"));
        assert!(read(d.path(), "sub", 9).unwrap_err().contains("folder"));
        assert_eq!(size(64 << 20), "64 MiB");
    }
}
