//! Opening files the user points at without trusting what they are:
//! [`open_regular`] opens without blocking (a FIFO does not hang the open)
//! and checks the opened descriptor, so a FIFO, a device or `/dev/zero`
//! behind a symlink is refused, never read; [`read_regular`] adds a byte
//! limit, checked on the descriptor before reading and again while reading
//! (a file that grows is cut off, not followed). Sources, key files,
//! `profiles.toml` and rule files all open through here.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Largest `profiles.toml` or rule file read (far above any real one).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Open `path` for reading if it is a regular file, else `Ok(Err(reason))`
/// (`"is a symbolic link"`, `"not a regular file (a FIFO)"`, ...).
/// `follow: false` refuses a symbolic link at `path` itself (`O_NOFOLLOW`).
pub fn open_regular(path: &Path, follow: bool) -> std::io::Result<Result<(File, Metadata), &'static str>> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let f = match std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if !follow && e.raw_os_error() == Some(libc::ELOOP) => return Ok(Err("is a symbolic link")),
        Err(e) => return Err(e),
    };
    let md = f.metadata()?;
    if !md.is_file() {
        return Ok(Err(not_regular(md.file_type())));
    }
    Ok(Ok((f, md)))
}

fn not_regular(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "not a regular file (a folder)"
    } else if t.is_fifo() {
        "not a regular file (a FIFO)"
    } else if t.is_char_device() || t.is_block_device() {
        "not a regular file (a device)"
    } else if t.is_socket() {
        "not a regular file (a socket)"
    } else {
        "not a regular file"
    }
}

/// The bytes of the regular file at `path`, at most `max` of them.
pub fn read_regular(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let (f, md) = open_regular(path, true)?
        .map_err(|why| std::io::Error::new(std::io::ErrorKind::InvalidInput, why))?;
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

/// Parse a byte size: `500M`, `2G`, `1.5GiB`, `10MB`, `1024` (bytes).
/// K, M, G and T (with or without `B`/`iB`) are powers of 1024.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("bad size {s:?} (e.g. 500M, 10GiB, 1024)"))?;
    let mult = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("bad size unit in {s:?} (use K, M, G or T)")),
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("size {s:?} is too large"));
    }
    Ok(bytes as u64)
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
