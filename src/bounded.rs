//! Bounded reads of small files the user points at (profiles.toml, rule
//! files): the file is opened without blocking, must be a regular file
//! after the open (a FIFO, a device or `/dev/zero` behind a symlink is
//! refused, never read), and must not exceed a byte limit, checked on the
//! open descriptor before reading and again while reading (a file that
//! grows is cut off, not followed).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Largest `profiles.toml` or rule file read (far above any real one).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The bytes of the regular file at `path`, at most `max` of them.
pub fn read_regular(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if md.len() > max {
        return Err(too_big(md.len(), max));
    }
    let mut bytes = Vec::with_capacity(md.len() as usize);
    f.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64, max));
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_text(path: &Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_regular(path, max)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn too_big(len: u64, max: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{len} bytes is over the {max}-byte limit for this file"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_and_oversized_files_are_refused() {
        assert!(read_regular(Path::new("/dev/zero"), 10).unwrap_err().to_string().contains("regular"));
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_regular(&p, 10).unwrap(), b"0123456789");
        assert!(read_regular(&p, 9).unwrap_err().to_string().contains("limit"));
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(read_regular(&fifo, 10).unwrap_err().to_string().contains("regular"));
    }
}
