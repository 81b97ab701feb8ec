//! `delta/full.tar.zst`: the files of the new full export a delta carries
//! (sealed metadata, TUF metadata, changed index files, whole encrypted
//! data files), packed as one deterministic tar in one zstd frame.
//!
//! Why one archive: these files list every file of the export (manifest,
//! provenance, envelopes, `checksums.txt`, `export.json`, targets) and
//! repeat the same digests; packed with a 16 MiB window they shrink about
//! 8× (9 MB → 1 MB at 300k advisories), which loose files cannot.
//!
//! Format: ustar members ([`crate::formats::tar::header`], mtime 0) in
//! path order, then two zero blocks, compressed as one zstd frame at level
//! [`LEVEL`] with window 2^[`WINDOW_LOG`], checksum and content size: the
//! same files give the same bytes.
//!
//! The two DSSE envelopes travel without their payload ([`detach`]): a
//! payload is the base64 of a file the pack carries anyway (the manifest
//! in compact canonical form, the provenance as it is), which zstd cannot
//! see through; [`attach`] makes the envelope again, byte for byte, from
//! that file. The diff names the detached envelopes; `apply` attaches them
//! right after unpacking and checks every file against `checksums.txt`.
//!
//! Reading ([`unpack`]) happens before the delta is authenticated (its
//! signing keys may be among the packed TUF roots), so it trusts nothing:
//! regular-file members only, each a safe relative path among those the
//! caller expects, at most once, each under a size limit; anything else is
//! an error and nothing outside the target folder is written.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;

use crate::formats::tar;

/// Where a delta holds its pack.
pub const PATH: &str = "delta/full.tar.zst";

/// zstd level of the pack: level 19 is 40× slower for 10 % less.
pub const LEVEL: i32 = 9;
/// log2 of the pack's zstd window: the metadata files repeat each other's digests.
pub const WINDOW_LOG: u32 = 24;
/// The largest member [`unpack`] accepts.
pub const MAX_MEMBER: u64 = 1 << 30;

/// Envelopes that may travel without payload, and the carried file each
/// payload is made from.
pub const DETACHABLE: [(&str, &str); 2] =
    [("manifest.dsse.json", "manifest.json"), ("provenance.dsse.json", "provenance.json")];

/// The payload the envelope `name` signs, made from its source file.
fn payload_of(name: &str, source: &[u8]) -> Result<Vec<u8>, String> {
    match name {
        // sealing signs the manifest in compact canonical form
        "manifest.dsse.json" => serde_json::from_slice::<serde_json::Value>(source)
            .map(|v| crate::canon::to_vec(&v))
            .map_err(|e| format!("manifest.json: {e}")),
        "provenance.dsse.json" => Ok(source.to_vec()),
        _ => Err(format!("{} is not an envelope that travels without payload", crate::shown::name(name))),
    }
}

/// `envelope` (the bytes of `name`) without its payload, when the payload
/// is exactly what [`attach`] makes from `source` again; None otherwise
/// (the envelope then travels whole).
pub fn detach(name: &str, envelope: &[u8], source: &[u8]) -> Option<Vec<u8>> {
    let mut env = crate::formats::dsse::Envelope::from_json(envelope).ok()?;
    if env.payload != payload_of(name, source).ok()? || env.to_json() != envelope {
        return None;
    }
    // what attach does: the same envelope with the payload set back
    env.payload.clear();
    Some(env.to_json())
}

/// The envelope `name` again, from its payload-less form and its source file.
pub fn attach(name: &str, stripped: &[u8], source: &[u8]) -> Result<Vec<u8>, String> {
    let mut env = crate::formats::dsse::Envelope::from_json(stripped)?;
    if !env.payload.is_empty() {
        return Err(format!("{} carries a payload", crate::shown::name(name)));
    }
    env.payload = payload_of(name, source)?;
    Ok(env.to_json())
}

/// A pack being written: [`Writer::add`] members in path order, then [`Writer::finish`].
pub struct Writer(zstd::stream::write::Encoder<'static, std::io::BufWriter<std::fs::File>>);

impl Writer {
    pub fn create(dst: &Path) -> std::io::Result<Writer> {
        let out = std::io::BufWriter::new(std::fs::File::create(dst)?);
        let mut z = zstd::stream::write::Encoder::new(out, LEVEL)?;
        z.include_checksum(true)?;
        z.set_parameter(zstd::stream::raw::CParameter::WindowLog(WINDOW_LOG))?;
        Ok(Writer(z))
    }
    pub fn add(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(&tar::header(path, bytes.len() as u64, 0).map_err(std::io::Error::other)?)?;
        self.0.write_all(bytes)?;
        self.0.write_all(&vec![0u8; (tar::BLOCK - bytes.len() % tar::BLOCK) % tar::BLOCK])
    }
    pub fn finish(mut self) -> std::io::Result<()> {
        self.0.write_all(&[0u8; 2 * tar::BLOCK])?;
        self.0.finish()?.flush()
    }
}

/// Extract the pack `src` into the folder `dir`: exactly the paths in
/// `expected`, each a regular file. Errors say what was wrong.
pub fn unpack(src: &Path, expected: &BTreeSet<String>, dir: &Path) -> Result<(), String> {
    let f = std::fs::File::open(src).map_err(|e| e.to_string())?;
    let mut dec = zstd::stream::read::Decoder::new(f).map_err(|e| e.to_string())?;
    dec.window_log_max(WINDOW_LOG).map_err(|e| e.to_string())?;
    let mut ar = ::tar::Archive::new(dec);
    let mut seen = BTreeSet::new();
    for e in ar.entries().map_err(|e| e.to_string())? {
        let mut e = e.map_err(|e| e.to_string())?;
        let path =
            String::from_utf8(e.path_bytes().into_owned()).map_err(|_| "a member path is not UTF-8")?;
        let shown = crate::shown::name(&path);
        if e.header().entry_type() != ::tar::EntryType::Regular {
            return Err(format!("member {shown} is not a regular file"));
        }
        if !super::tree::safe_path(&path) || !expected.contains(&path) {
            return Err(format!("member {shown} is not among the carried files"));
        }
        if !seen.insert(path.clone()) {
            return Err(format!("member {shown} appears twice"));
        }
        let size = e.header().size().map_err(|e| e.to_string())?;
        if size > MAX_MEMBER {
            return Err(format!("member {shown} is larger than {} MiB", MAX_MEMBER >> 20));
        }
        let dst = dir.join(&path);
        std::fs::create_dir_all(dst.parent().expect("below dir")).map_err(|e| e.to_string())?;
        let mut out = std::fs::File::create_new(&dst).map_err(|e| format!("{shown}: {e}"))?;
        let n = std::io::copy(&mut (&mut e).take(size), &mut out).map_err(|e| format!("{shown}: {e}"))?;
        if n != size {
            return Err(format!("member {shown} is truncated"));
        }
    }
    if let Some(missing) = expected.difference(&seen).next() {
        return Err(format!("{} is not in the pack", crate::shown::name(missing)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write<'a>(files: impl Iterator<Item = (&'a str, &'a [u8])>, dst: &Path) -> std::io::Result<()> {
        let mut w = Writer::create(dst)?;
        for (path, bytes) in files {
            w.add(path, bytes)?;
        }
        w.finish()
    }

    fn set(p: &[&str]) -> BTreeSet<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        let d = tempfile::tempdir().unwrap();
        let files: Vec<(&str, &[u8])> = vec![("a.json", b"{}"), ("tuf/metadata/1.root.json", &[7u8; 1000])];
        write(files.iter().copied(), &d.path().join("p1")).unwrap();
        write(files.iter().copied(), &d.path().join("p2")).unwrap();
        assert_eq!(std::fs::read(d.path().join("p1")).unwrap(), std::fs::read(d.path().join("p2")).unwrap());
        let out = d.path().join("x");
        unpack(&d.path().join("p1"), &set(&["a.json", "tuf/metadata/1.root.json"]), &out).unwrap();
        assert_eq!(std::fs::read(out.join("tuf/metadata/1.root.json")).unwrap(), vec![7u8; 1000]);
    }

    /// A tar built by hand, for members our writer refuses to make.
    fn hostile(name: &[u8], kind: u8, data: &[u8]) -> Vec<u8> {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut t = h.to_vec();
        t.extend_from_slice(data);
        t.resize(t.len().div_ceil(512) * 512 + 1024, 0);
        zstd::encode_all(&t[..], 3).unwrap()
    }

    #[test]
    fn envelopes_detach_and_attach_byte_for_byte() {
        let key = crate::signing::Ed25519Signer::from_secret(&[7u8; 32]);
        let manifest = crate::canon::to_pretty(&serde_json::json!({"files": [{"path": "a", "n": 1}]}));
        let compact = crate::canon::to_vec(&serde_json::from_slice(&manifest).unwrap());
        let env = crate::signing::sign_envelope(&key, "application/x", compact).unwrap().to_json();
        let stripped = detach("manifest.dsse.json", &env, &manifest).expect("detachable");
        assert!(stripped.len() < env.len());
        assert_eq!(attach("manifest.dsse.json", &stripped, &manifest).unwrap(), env);
        // a payload other than the source's: travels whole
        assert_eq!(detach("manifest.dsse.json", &env, b"{}"), None);
        assert_eq!(detach("provenance.dsse.json", &env, &manifest), None);
        // attaching to a payload-carrying or unknown envelope is refused
        assert!(attach("manifest.dsse.json", &env, &manifest).unwrap_err().contains("carries a payload"));
        assert!(attach("checksums.txt", &stripped, &manifest).is_err());
        // another source gives another envelope (caught by checksums.txt in apply)
        let other = crate::canon::to_pretty(&serde_json::json!({"files": []}));
        assert_ne!(attach("manifest.dsse.json", &stripped, &other).unwrap(), env);
    }

    #[test]
    fn refuses_hostile_members_writing_nothing_outside() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("x");
        std::fs::create_dir(&out).unwrap();
        for (name, kind, why) in [
            (&b"../evil.json"[..], b'0', "not among"),
            (b"/etc/evil.json", b'0', "not among"),
            (b"a.json", b'2', "not a regular file"),
            (b"a.json", b'1', "not a regular file"),
            (b"other.json", b'0', "not among"),
        ] {
            std::fs::write(d.path().join("p"), hostile(name, kind, b"{}")).unwrap();
            let e = unpack(&d.path().join("p"), &set(&["a.json", "../evil.json"]), &out).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        assert!(!d.path().join("evil.json").exists());
        write([("a.json", &b"{}"[..])].into_iter(), &d.path().join("p")).unwrap();
        let e = unpack(&d.path().join("p"), &set(&["a.json", "b.json"]), &d.path().join("y")).unwrap_err();
        assert!(e.contains("b.json"), "{e}");
        std::fs::write(d.path().join("p"), b"not zstd at all").unwrap();
        assert!(unpack(&d.path().join("p"), &set(&["a.json"]), &out).is_err());
    }
}
