//! Key files: generating, loading and checking Ed25519 keys.
//!
//! Private keys are PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, the form
//! `openssl genpkey -algorithm ed25519` writes); public keys are
//! SubjectPublicKeyInfo PEM (`openssl pkey -pubout`).
//!
//! Invariants: a private key file that group or others can access is
//! refused (checked on the opened file, like ssh does); `keygen` never
//! overwrites an existing file and creates the private key with mode 0600
//! from the start; key text is held in zeroizing buffers and never appears
//! in an error message. Key files are opened only if they are regular
//! files (a symlink is followed to one; a FIFO or device is refused on
//! the descriptor, opened non-blocking so nothing can hang: see
//! [`crate::bounded::open_regular`]) and no larger than [`KEY_FILE_MAX`],
//! checked before reading.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use zeroize::Zeroizing;

use super::{Ed25519Signer, KeyError, PublicKey, Signer};

fn parse_private(text: &str, what: &str) -> Result<Ed25519Signer, KeyError> {
    let kp = KeypairBytes::from_pkcs8_pem(text.trim()).map_err(|e| KeyError::Malformed {
        what: what.to_string(),
        message: format!("not an Ed25519 PKCS#8 private key PEM ({e})"),
    })?;
    let signer = Ed25519Signer::from_secret(&kp.secret_key);
    if let Some(p) = &kp.public_key {
        if p.0 != *signer.public_key().0.as_bytes() {
            return Err(KeyError::Malformed {
                what: what.to_string(),
                message: "the embedded public key does not match the private key".into(),
            });
        }
    }
    Ok(signer)
}

/// Largest key file read: a PEM Ed25519 key is about 120 bytes; this
/// leaves room for comments or a certificate-sized mistake.
pub const KEY_FILE_MAX: u64 = 64 << 10;

/// Open a key file as described in the module doc; returns it with its metadata.
fn open_key(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), KeyError> {
    let refuse = |message: String| KeyError::Malformed { what: crate::shown::path(path), message };
    let (f, meta) = crate::bounded::open_regular(path, true)
        .map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?
        .map_err(|why| refuse(why.to_string()))?;
    if meta.len() > KEY_FILE_MAX {
        return Err(refuse(format!(
            "{} bytes, over the {} KiB limit for a key file",
            meta.len(),
            KEY_FILE_MAX >> 10
        )));
    }
    Ok((f, meta))
}

/// Read an opened key file, at most [`KEY_FILE_MAX`] bytes.
fn read_key(path: &Path, f: std::fs::File) -> Result<Zeroizing<String>, KeyError> {
    use std::io::Read;
    let mut text = Zeroizing::new(String::new());
    f.take(KEY_FILE_MAX + 1)
        .read_to_string(&mut text)
        .map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
    if text.len() as u64 > KEY_FILE_MAX {
        return Err(KeyError::Malformed {
            what: crate::shown::path(path),
            message: format!("grew over the {} KiB limit for a key file while read", KEY_FILE_MAX >> 10),
        });
    }
    Ok(text)
}

/// Load a private key file, refusing one that group or others can access.
pub fn load_file(path: &Path) -> Result<Ed25519Signer, KeyError> {
    let (f, meta) = open_key(path)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path: path.to_path_buf(), mode });
    }
    let text = read_key(path, f)?;
    parse_private(&text, &path.display().to_string())
}

/// Load a private key PEM held in environment variable `var`.
pub fn load_env(var: &str) -> Result<Ed25519Signer, KeyError> {
    let text = Zeroizing::new(std::env::var(var).unwrap_or_default());
    if text.trim().is_empty() {
        return Err(KeyError::Env { var: var.to_string() });
    }
    parse_private(&text, &format!("environment variable {var}"))
}

/// Load a public key PEM (a `--trust-root`).
pub fn load_public(path: &Path) -> Result<PublicKey, KeyError> {
    let (f, _) = open_key(path)?;
    let text = read_key(path, f)?;
    PublicKey::from_pem(&text, &crate::shown::path(path))
}

/// The two files `keygen --out base` writes.
pub fn key_paths(base: &Path) -> (PathBuf, PathBuf) {
    let with = |ext: &str| {
        let mut s = base.as_os_str().to_owned();
        s.push(ext);
        PathBuf::from(s)
    };
    (with(".key"), with(".pub"))
}

fn create_new(path: &Path, mode: u32, bytes: &[u8]) -> Result<(), KeyError> {
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists { path: path.to_path_buf() }
            } else {
                KeyError::Write { path: path.to_path_buf(), source: e }
            }
        })?;
    let w = |source| KeyError::Write { path: path.to_path_buf(), source };
    // the umask may have cleared bits but never adds any; make the mode exact
    f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(w)?;
    f.write_all(bytes).map_err(w)?;
    f.sync_all().map_err(w)
}

/// Generate a key pair: `<base>.key` (PKCS#8 PEM, 0600) and `<base>.pub`
/// (SPKI PEM, 0644). Refuses to overwrite either file.
pub fn keygen(base: &Path) -> Result<(PathBuf, PathBuf, PublicKey), KeyError> {
    if base.file_name().is_none() || base.as_os_str().to_string_lossy().ends_with('/') {
        return Err(KeyError::Malformed {
            what: base.display().to_string(),
            message: "--out needs a file name stem, e.g. keys/export".into(),
        });
    }
    let (key_path, pub_path) = key_paths(base);
    for p in [&key_path, &pub_path] {
        if p.symlink_metadata().is_ok() {
            return Err(KeyError::Exists { path: p.clone() });
        }
    }
    if let Some(parent) = key_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| KeyError::Write { path: parent.to_path_buf(), source: e })?;
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(secret.as_mut())
        .map_err(|e| KeyError::Sign(format!("no system randomness: {e}")))?;
    let signer = Ed25519Signer::from_secret(&secret);
    // PKCS#8 v1 (no embedded public key), as openssl writes it
    let pem = KeypairBytes { secret_key: *secret, public_key: None }
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| KeyError::Sign(format!("cannot encode the key: {e}")))?;
    let public = signer.public_key();
    create_new(&key_path, 0o600, pem.as_bytes())?;
    if let Err(e) = create_new(&pub_path, 0o644, public.to_pem().as_bytes()) {
        let _ = std::fs::remove_file(&key_path);
        return Err(e);
    }
    Ok((key_path, pub_path, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_load_and_refusals() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("k");
        let (k, p, public) = keygen(&base).unwrap();
        assert_eq!(std::fs::metadata(&k).unwrap().permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&k).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
        assert_eq!(load_file(&k).unwrap().public_key(), public);
        assert_eq!(load_public(&p).unwrap(), public);
        assert!(matches!(keygen(&base), Err(KeyError::Exists { .. })));
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = load_file(&k).unwrap_err().to_string();
        assert!(e.contains("mode 0640") && e.contains("chmod 600"), "{e}");
        let bad = d.path().join("bad.key");
        create_new(&bad, 0o600, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
        let e = load_file(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.key") && e.contains("PKCS#8"), "{e}");
        assert!(!e.contains("AAAA"), "key text leaked into the message: {e}");
        assert!(matches!(load_file(&d.path().join("none.key")), Err(KeyError::Read { .. })));
    }
}
