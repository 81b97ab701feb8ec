//! A delta's base given as an archive of an export folder (`base =
//! "site/mirror-7.tar.gz"`: what a site last imported, as `tar` made it):
//! `.tar`, `.tar.gz`/`.tgz` or `.tar.zst`/`.tzst`, holding the export at
//! its root or under one top-level folder (`tar -C out -czf x.tgz mirror`).
//!
//! The archive is untrusted input. Members are checked before anything is
//! written ([`crate::sources::archive::check_member`]: no absolute paths,
//! no `..`); folders and regular files are accepted, and hard links to a
//! member already extracted (GNU tar stores an export's TUF and OCI names
//! of one file that way); symbolic links, devices, FIFOs and sparse files
//! are refused naming the member. Each member is at most [`MAX_MEMBER`]
//! bytes, the whole at most [`MAX_TOTAL`], at most [`MAX_MEMBERS`] members.
//! A mirror's own `mirror-<generation>.tar.zst` holds the tree only (no
//! `manifest.json` or `checksums.txt`, which identify the base): it is
//! refused saying so.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::sources::archive::{check_member, Compression};

/// The largest member extracted.
pub const MAX_MEMBER: u64 = 1 << 30;
/// The most bytes extracted from one archive.
pub const MAX_TOTAL: u64 = 64 << 30;
/// The most members extracted from one archive.
pub const MAX_MEMBERS: u64 = 4_000_000;

/// Whether `path` names an archive a base may be.
pub fn is_archive(path: &Path) -> bool {
    path.is_file() && Compression::of(path).is_some()
}

fn open(path: &Path) -> Result<::tar::Archive<Box<dyn Read>>, String> {
    let comp = Compression::of(path).ok_or("not a .tar, .tar.gz, .tgz, .tar.zst or .tzst file")?;
    let f = std::io::BufReader::new(std::fs::File::open(path).map_err(|e| e.to_string())?);
    let r: Box<dyn Read> = match comp {
        Compression::None => Box::new(f),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(f).map_err(|e| e.to_string())?),
    };
    Ok(::tar::Archive::new(r))
}

/// Extract the archive at `path` into the empty folder `dst`; returns the
/// export's folder inside it (`dst` or its one top-level folder).
pub fn unpack(path: &Path, dst: &Path) -> Result<PathBuf, String> {
    let mut ar = open(path)?;
    let (mut total, mut count) = (0u64, 0u64);
    let mut last = String::from("(first header)");
    for e in ar.entries().map_err(|e| format!("{last}: {e}"))? {
        let mut e = e.map_err(|e| format!("after {last}: {e}"))?;
        let raw = e.path().map_err(|e| format!("after {last}: {e}"))?.into_owned();
        let shown = crate::shown::path(&raw);
        count += 1;
        if count > MAX_MEMBERS {
            return Err(format!("more than {MAX_MEMBERS} members"));
        }
        use ::tar::EntryType as E;
        let kind = e.header().entry_type();
        if matches!(kind, E::XGlobalHeader | E::XHeader | E::GNULongName | E::GNULongLink) {
            continue;
        }
        if kind == E::Directory {
            if raw.components().all(|c| matches!(c, std::path::Component::CurDir)) {
                continue;
            }
            let rel = check_member(&raw).map_err(|why| format!("member {shown}: {why}"))?;
            std::fs::create_dir_all(dst.join(rel)).map_err(|e| format!("member {shown}: {e}"))?;
            continue;
        }
        let rel = check_member(&raw).map_err(|why| format!("member {shown}: {why}"))?;
        let out = dst.join(&rel);
        std::fs::create_dir_all(out.parent().expect("below dst"))
            .map_err(|e| format!("member {shown}: {e}"))?;
        match kind {
            E::Regular | E::Continuous => {
                let size = e.size();
                total = total.saturating_add(size);
                if size > MAX_MEMBER || total > MAX_TOTAL {
                    return Err(format!(
                        "member {shown}: over the size limit ({} MiB a file)",
                        MAX_MEMBER >> 20
                    ));
                }
                let mut f = std::fs::File::create_new(&out).map_err(|e| format!("member {shown}: {e}"))?;
                let n = std::io::copy(&mut (&mut e).take(size), &mut f)
                    .map_err(|e| format!("member {shown}: {e}"))?;
                if n != size {
                    return Err(format!("member {shown}: truncated"));
                }
            }
            E::Link => {
                let target = e
                    .link_name()
                    .map_err(|e| format!("member {shown}: {e}"))?
                    .ok_or_else(|| format!("member {shown}: a hard link without a target"))?;
                let t = check_member(&target).map_err(|why| format!("member {shown}: link target: {why}"))?;
                let src = dst.join(t);
                if !std::fs::symlink_metadata(&src).is_ok_and(|m| m.is_file()) {
                    return Err(format!("member {shown}: links to a file not extracted before it"));
                }
                std::fs::hard_link(&src, &out).map_err(|e| format!("member {shown}: {e}"))?;
            }
            other => {
                return Err(format!(
                    "member {shown}: a {} member; an export holds regular files and hard links only",
                    match other {
                        E::Symlink => "symbolic link".to_string(),
                        E::Char | E::Block => "device".to_string(),
                        E::Fifo => "FIFO".to_string(),
                        E::GNUSparse => "sparse".to_string(),
                        o => format!("type {:?}", o.as_byte() as char),
                    }
                ));
            }
        }
        last = format!("member {shown}");
    }
    export_root(dst)
}

/// The `export.json` of the export in the archive at `path` (at its root
/// or in a top-level folder), read without extracting anything. `tar`
/// may have stored it as a hard link to an earlier member (its TUF or OCI
/// name): then a second pass reads that member.
pub fn export_json(path: &Path) -> Result<super::tree::ExportJson, String> {
    let is_export_json =
        |rel: &str| rel.matches('/').count() <= 1 && rel.rsplit('/').next() == Some("export.json");
    let mut want: Option<String> = None;
    for pass in 0..2 {
        let mut ar = open(path)?;
        for e in ar.entries().map_err(|e| e.to_string())? {
            let e = e.map_err(|e| e.to_string())?;
            let raw = e.path().map_err(|e| e.to_string())?.into_owned();
            let Ok(rel) = check_member(&raw) else { continue };
            let kind = e.header().entry_type();
            let hit = match &want {
                Some(w) => *w == rel,
                None => is_export_json(&rel),
            };
            if !hit {
                continue;
            }
            if kind == ::tar::EntryType::Link && want.is_none() {
                let target =
                    e.link_name().map_err(|e| e.to_string())?.ok_or("a hard link without a target")?;
                want = Some(check_member(&target)?);
                break;
            }
            if !kind.is_file() {
                continue;
            }
            let mut b = Vec::new();
            e.take(MAX_MEMBER).read_to_end(&mut b).map_err(|e| e.to_string())?;
            return serde_json::from_slice(&b).map_err(|e| format!("{rel}: {e}"));
        }
        if pass == 0 && want.is_none() {
            break;
        }
    }
    Err("holds no export.json at its root or in a top-level folder: not a mirror export".into())
}

/// `dst` when it holds `export.json`, else its only folder that does.
fn export_root(dst: &Path) -> Result<PathBuf, String> {
    if dst.join("export.json").is_file() {
        if !dst.join("manifest.json").is_file() {
            return Err("holds export.json but no manifest.json: it is a mirror's tree archive \
                        (mirror-<generation>.tar.zst), not an archive of the export folder"
                .into());
        }
        return Ok(dst.to_path_buf());
    }
    let mut found = Vec::new();
    for e in std::fs::read_dir(dst).map_err(|e| e.to_string())? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.is_dir() && p.join("export.json").is_file() {
            found.push(p);
        }
    }
    match found.len() {
        1 => export_root(&found.remove(0)),
        0 => Err("holds no export.json at its root or in a top-level folder: not a mirror export".into()),
        _ => Err("holds more than one export folder".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(members: &[(&str, u8, &[u8], &str)]) -> Vec<u8> {
        let mut t = Vec::new();
        for (name, kind, data, link) in members {
            let mut h = ::tar::Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(::tar::EntryType::new(*kind));
            h.set_cksum();
            t.extend_from_slice(h.as_bytes());
            t.extend_from_slice(data);
            t.resize(t.len().div_ceil(512) * 512, 0);
        }
        t.resize(t.len() + 1024, 0);
        t
    }

    fn try_unpack(members: &[(&str, u8, &[u8], &str)]) -> (tempfile::TempDir, Result<PathBuf, String>) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b.tar"), tar_of(members)).unwrap();
        std::fs::create_dir(d.path().join("x")).unwrap();
        let r = unpack(&d.path().join("b.tar"), &d.path().join("x"));
        (d, r)
    }

    #[test]
    fn an_export_folder_with_hard_links_unpacks() {
        let (d, r) = try_unpack(&[
            ("mirror/", b'5', b"", ""),
            ("mirror/export.json", b'0', b"{}", ""),
            ("mirror/manifest.json", b'0', b"{}", ""),
            ("mirror/tuf/targets/x.export.json", b'1', b"", "mirror/export.json"),
        ]);
        let root = r.unwrap();
        assert_eq!(root, d.path().join("x/mirror"));
        assert_eq!(std::fs::read(root.join("tuf/targets/x.export.json")).unwrap(), b"{}");
    }

    #[test]
    fn hostile_members_are_refused_naming_them() {
        for (members, says) in [
            (vec![("../evil", b'0', &b"x"[..], "")], "'..'"),
            (vec![("/etc/evil", b'0', &b"x"[..], "")], "absolute"),
            (vec![("a", b'2', &b""[..], "/etc/passwd")], "symbolic link"),
            (vec![("a", b'1', &b""[..], "../../etc/passwd")], "link target"),
            (vec![("a", b'1', &b""[..], "missing")], "not extracted before"),
            (vec![("a", b'3', &b""[..], "")], "device"),
            (vec![("a", b'0', &b"x"[..], ""), ("a", b'0', &b"y"[..], "")], "exists"),
        ] {
            let (d, r) = try_unpack(&members);
            let e = r.unwrap_err();
            assert!(e.contains(says) && e.contains("member"), "{says}: {e}");
            assert!(!d.path().join("evil").exists());
        }
        let (_d, r) = try_unpack(&[("export.json", b'0', b"{}", "")]);
        assert!(r.unwrap_err().contains("tree archive"));
        let (_d, r) = try_unpack(&[("readme", b'0', b"{}", "")]);
        assert!(r.unwrap_err().contains("no export.json"));
    }
}
