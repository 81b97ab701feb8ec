//! `kit stage`: copy published exports into a new kit, atomically (see the parent module).

use super::*;

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = shown::path(path);
    move |e| Error::Publish(format!("{what} {path}: {e}"))
}

/// Make folder `p` with mode 0755 (whatever the umask).
fn make_dir(p: &Path) -> Result<(), Error> {
    fs::create_dir(p).map_err(io("cannot create", p))?;
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).map_err(io("cannot set the mode of", p))
}

fn sync_dir(p: &Path) -> Result<(), Error> {
    fs::File::open(p).and_then(|f| f.sync_all()).map_err(io("cannot sync", p))
}

/// Write `bytes` as a new file `p` of `mode`, fsynced; returns its SHA-256.
fn write_new(p: &Path, bytes: &[u8], mode: u32) -> Result<Sha256, Error> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(p)
        .map_err(io("cannot create", p))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io("cannot write", p))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(io("cannot set the mode of", p))?;
    Ok(Sha256::of(bytes))
}

/// Copy regular file `from` to new file `to` (0644), streamed, fsynced;
/// returns its SHA-256 and size.
fn copy_file(from: &Path, to: &Path) -> Result<(Sha256, u64), Error> {
    use sha2::Digest as _;
    let mut src = match crate::bounded::open_regular(from, false).map_err(io("cannot open", from))? {
        Ok((f, _)) => f,
        Err(why) => {
            return Err(Error::Verify(format!(
                "{}: {why}: an export holds only files and folders; nothing staged",
                shown::path(from)
            )))
        }
    };
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(to)
        .map_err(io("cannot create", to))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io("cannot read", from)(e)),
        };
        h.update(&buf[..got]);
        dst.write_all(&buf[..got]).map_err(io("cannot write", to))?;
        n += got as u64;
    }
    dst.sync_all().map_err(io("cannot write", to))?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o644)).map_err(io("cannot set the mode of", to))?;
    Ok((Sha256(h.finalize().into()), n))
}

/// Copy the export folder `src` into the new folder `dest`; returns each
/// file (path relative to `src`, digest, size), in path order.
fn copy_export(src: &Path, dest: &Path) -> Result<Vec<(String, Sha256, u64)>, Error> {
    make_dir(dest)?;
    let mut files = Vec::new();
    let mut dirs = vec![dest.to_path_buf()];
    for e in walkdir::WalkDir::new(src).min_depth(1).sort_by_file_name() {
        let e = e.map_err(|e| Error::Publish(format!("cannot list {}: {e}", shown::path(src))))?;
        let rel = e.path().strip_prefix(src).unwrap_or(e.path());
        let Some(rel_s) = rel.to_str() else {
            return Err(Error::Verify(format!("{}: a file name that is not UTF-8", shown::path(e.path()))));
        };
        let to = dest.join(rel);
        if e.file_type().is_dir() {
            make_dir(&to)?;
            dirs.push(to);
        } else {
            let (sha, n) = copy_file(e.path(), &to)?;
            files.push((rel_s.to_string(), sha, n));
        }
    }
    for d in dirs.iter().rev() {
        sync_dir(d)?;
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// Every copied file must match the export's own `checksums.txt` (when
/// it has one), and everything it lists must have been copied.
fn check_against_checksums(
    profile: &str,
    source: &Path,
    copied: &Path,
    files: &[(String, Sha256, u64)],
) -> Result<(), Error> {
    let Ok(text) = read::read(copied, CHECKSUMS, crate::ops::verify::CHECKSUMS_MAX) else { return Ok(()) };
    let damaged = |why: String| {
        Error::Verify(format!(
            "profile {profile}: {} {why}: the export is damaged or changed while staging \
             (check it with `export-center verify`); nothing staged",
            shown::path(source)
        ))
    };
    let listed = crate::formats::manifest::parse_checksums(&String::from_utf8_lossy(&text))
        .map_err(|e| damaged(format!("has a checksums.txt that does not parse ({e})")))?;
    let listed: BTreeMap<String, Sha256> = listed.into_iter().collect();
    for (rel, sha, _) in files.iter().filter(|f| f.0 != CHECKSUMS) {
        match listed.get(rel) {
            None => {
                return Err(damaged(format!(
                    "holds {} that its checksums.txt does not list",
                    shown::name(rel)
                )))
            }
            Some(want) if want != sha => {
                return Err(damaged(format!("file {} does not match its checksums.txt", shown::name(rel))))
            }
            Some(_) => {}
        }
    }
    let have: BTreeSet<&str> = files.iter().map(|f| f.0.as_str()).collect();
    if let Some(missing) = listed.keys().find(|k| !have.contains(k.as_str())) {
        return Err(damaged(format!("lacks {}, which its checksums.txt lists", shown::name(missing))));
    }
    Ok(())
}

/// `path` (which may not exist yet) is `dir` or inside it, symlinks resolved.
fn within(path: &Path, dir: &Path) -> bool {
    let Ok(dir) = fs::canonicalize(dir) else { return false };
    // the longest existing ancestor, resolved, and the rest as given
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = fs::canonicalize(&existing) {
            let full = rest.iter().rev().fold(c, |acc: PathBuf, part| acc.join(part));
            return full.starts_with(&dir);
        }
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing =
                    if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent.to_path_buf() };
            }
            _ => return false,
        }
    }
}

/// Rename folder `from` to `to` unless `to` exists (atomically where the
/// file system supports `RENAME_NOREPLACE`). `Ok(false)`: `to` exists.
pub(super) fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(from)?, c(to)?);
    // SAFETY: two NUL-terminated paths; no memory is shared with the kernel afterwards.
    let r = unsafe {
        libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_NOREPLACE)
    };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => Ok(false),
        // no RENAME_NOREPLACE here: check, then rename (a kit is never empty,
        // so rename(2) cannot replace another kit folder)
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            if to.symlink_metadata().is_ok() {
                return Ok(false);
            }
            fs::rename(from, to).map(|()| true)
        }
        _ => Err(e),
    }
}

/// `kit stage`: see the module doc.
pub fn stage(ws: &Workspace, opts: &StageOptions) -> Result<Staged, Error> {
    if let Some(v) = &opts.kit_version {
        check_kit_version(v)?;
    }
    // which exports: resolved (and every refusal made) before anything is written
    let mut picked: Vec<(&crate::profile::ProfileDef, PathBuf, crate::ops::generations::Record)> = Vec::new();
    if opts.profiles.is_empty() {
        if opts.generation.is_some() {
            return Err(Error::Usage("--generation N needs the PROFILE(s) to take generation N of".into()));
        }
        for p in ws.profiles.values() {
            if let Ok((dir, rec)) = crate::ops::generations::export_dir(ws, p, None) {
                picked.push((p, dir, rec));
            }
        }
        if picked.is_empty() {
            return Err(Error::Usage(format!(
                "nothing to stage: no profile has a published export under {} (run `export-center build` first)",
                shown::path(&ws.out_dir)
            )));
        }
    } else {
        let names: BTreeSet<&String> = opts.profiles.iter().collect();
        for name in names {
            let p = ws.profiles.get(name).ok_or_else(|| {
                let have: Vec<&str> = ws.profiles.keys().map(String::as_str).collect();
                Error::Usage(format!("no profile named {} (have: {})", shown::name(name), have.join(", ")))
            })?;
            let (dir, rec) = crate::ops::generations::export_dir(ws, p, opts.generation)?;
            picked.push((p, dir, rec));
        }
    }
    for (p, _, _) in &picked {
        if RESERVED.contains(&p.name.as_str()) {
            return Err(Error::Usage(format!(
                "profile {}: its name is the kit's own {} file; rename the profile to stage it",
                p.name, p.name
            )));
        }
    }
    picked.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let kit_version = match &opts.kit_version {
        Some(v) => v.clone(),
        None => default_version(
            &picked
                .iter()
                .map(|(p, _, r)| (p.name.as_str(), r.generation, r.root_digest))
                .collect::<Vec<_>>(),
        ),
    };
    let out = &opts.out;
    if within(out, &ws.out_dir) {
        return Err(Error::Usage(format!(
            "--out {}: inside {}, where the exports are published; stage the kit elsewhere",
            shown::path(out),
            shown::path(&ws.out_dir)
        )));
    }
    let kit = out.join(KIT_DIR);
    let refuse = |kit: &Path| {
        let which = match existing_version(kit) {
            Some(v) if v == kit_version => format!("kit version {} is already staged there", shown::name(&v)),
            Some(v) => format!(
                "it already holds kit version {} (not {})",
                shown::name(&v),
                shown::name(&kit_version)
            ),
            None => "it already exists".to_string(),
        };
        Error::Usage(format!(
            "{}: {which}; a kit is never overwritten or replaced (stage into another --out)",
            shown::path(kit)
        ))
    };
    if kit.symlink_metadata().is_ok() {
        return Err(refuse(&kit));
    }
    fs::create_dir_all(out).map_err(io("cannot create", out))?;
    let tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempdir_in(out)
        .map_err(io("cannot create a folder in", out))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
        .map_err(io("cannot set the mode of", tmp.path()))?;

    let mut exports = Vec::new();
    let mut staged = Vec::new();
    let mut sums: Vec<(String, Sha256)> = Vec::new();
    let mut bytes = 0u64;
    for (p, dir, rec) in &picked {
        let dest = tmp.path().join(&p.name);
        let files = copy_export(dir, &dest)?;
        check_against_checksums(&p.name, dir, &dest, &files)?;
        let root = files
            .iter()
            .find(|f| f.0 == CHECKSUMS)
            .or_else(|| files.iter().find(|f| f.0 == "manifest.json"))
            .map(|f| f.1);
        if root != Some(rec.root_digest) {
            return Err(Error::Publish(format!(
                "profile {}: {} changed while it was staged (republished?); nothing staged, try again",
                p.name,
                shown::path(dir)
            )));
        }
        let kit_files: Vec<KitFile> = files
            .iter()
            .map(|(rel, sha, n)| KitFile { path: format!("{}/{rel}", p.name), sha256: sha.hex(), size: *n })
            .collect();
        for f in &files {
            sums.push((format!("{}/{}", p.name, f.0), f.1));
            bytes += f.2;
        }
        staged.push(StagedExport {
            profile: p.name.clone(),
            kind: rec.kind.clone(),
            generation: rec.generation,
            root_digest: format!("sha256:{}", rec.root_digest),
            created_at: rec.created_at.clone(),
            source: dir.clone(),
            files: kit_files.len(),
        });
        exports.push(KitExport {
            created_at: rec.created_at.clone(),
            files: kit_files,
            generation: rec.generation,
            kind: rec.kind.clone(),
            profile: p.name.clone(),
            root_digest: format!("sha256:{}", rec.root_digest),
        });
    }
    let manifest = KitManifest { exports, kit_version: kit_version.clone(), schema_version: SCHEMA.into() };
    let mut text = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Publish(e.to_string()))?;
    text.push(b'\n');
    sums.push((MANIFEST.into(), write_new(&tmp.path().join(MANIFEST), &text, 0o644)?));
    sums.push((SCRIPT.into(), write_new(&tmp.path().join(SCRIPT), SCRIPT_TEXT.as_bytes(), 0o755)?));
    bytes += (text.len() + SCRIPT_TEXT.len()) as u64;
    sums.sort_by(|a, b| a.0.cmp(&b.0));
    let listing: String = sums.iter().map(|(p, s)| format!("{}  {p}\n", s.hex())).collect();
    write_new(&tmp.path().join(CHECKSUMS), listing.as_bytes(), 0o644)?;
    bytes += listing.len() as u64;
    sync_dir(tmp.path())?;
    crate::crashpoint::hit("kit-staged");
    if !rename_noreplace(tmp.path(), &kit).map_err(io("cannot rename the staged kit to", &kit))? {
        return Err(refuse(&kit)); // another stage won the race; ours is removed with tmp
    }
    let _ = tmp.keep();
    sync_dir(out)?;
    Ok(Staged { kit, kit_version, exports: staged, files: sums.len() as u64 + 1, bytes })
}
