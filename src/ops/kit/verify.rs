//! `kit verify`: re-check a kit and every export in it (see the parent module).

use super::*;

/// What `kit verify` is asked to check each export with.
#[derive(Debug, Default)]
pub struct KitVerifyOptions {
    /// Trust roots, `--require-signature` and `--max-age`, passed on to
    /// `verify` for every export (its `profile` is set per export).
    pub verify: VerifyOptions,
}

/// `kit verify`'s report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KitReport {
    /// The `offline-kit` folder checked.
    pub path: String,
    pub ok: bool,
    pub kit_version: Option<String>,
    /// Files whose digest matched `checksums.txt`.
    pub files_checked: usize,
    /// Every problem: the kit's own, and each export's with its file
    /// prefixed by `<profile>/`.
    pub problems: Vec<Problem>,
    /// `verify`'s report of each staged export (its `path` is the profile).
    pub exports: Vec<VerifyReport>,
}

/// The `offline-kit` folder of `dir`: `dir/offline-kit`, or `dir` itself.
pub fn locate(dir: &Path) -> Result<PathBuf, Error> {
    let inner = dir.join(KIT_DIR);
    if inner.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return Ok(inner);
    }
    if dir.join(MANIFEST).is_file() && dir.join(CHECKSUMS).is_file() && dir.join(SCRIPT).is_file() {
        return Ok(dir.to_path_buf());
    }
    Err(Error::Usage(format!(
        "{}: no offline kit here (neither {KIT_DIR}/ nor a folder holding {MANIFEST}, {CHECKSUMS} and {SCRIPT})",
        shown::path(dir)
    )))
}

/// A profile folder name in a kit: one safe path component, not reserved.
fn profile_ok(name: &str) -> bool {
    read::safe_path(name) && !name.contains('/') && !name.starts_with('.') && !RESERVED.contains(&name)
}

/// The `kind` of the export manifest in `export`, when it reads.
fn export_kind(export: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Head {
        kind: String,
    }
    let bytes = read::read(export, "manifest.json", crate::ops::verify::MANIFEST_MAX).ok()?;
    serde_json::from_slice::<Head>(&bytes).ok().map(|h| h.kind)
}

/// `kit verify`: the kit at `kit` (see [`locate`]).
pub fn verify(kit: &Path, opts: &KitVerifyOptions) -> KitReport {
    use sha2::Digest as _;
    let mut problems: Vec<Problem> = Vec::new();
    let mut add = |file: &str, reason: String| {
        if problems.len() < crate::ops::verify::MAX_PROBLEMS {
            problems.push(Problem { file: file.to_string(), reason });
        }
    };
    // checksums.txt: every listed file matches
    let listed: Vec<(String, Sha256)> = match read::read(kit, CHECKSUMS, MAX_KIT_TEXT)
        .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
        .and_then(|t| crate::formats::manifest::parse_checksums(&t))
    {
        Ok(l) => l,
        Err(e) => {
            add(CHECKSUMS, format!("cannot read: {e}"));
            Vec::new()
        }
    };
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    let mut files_checked = 0;
    for (name, want) in &listed {
        let got = read::open(kit, name).and_then(|(mut f, _)| {
            let mut h = sha2::Sha256::new();
            let n = std::io::copy(&mut f, &mut h).map_err(|e| e.to_string())?;
            Ok((Sha256(h.finalize().into()), n))
        });
        match got {
            Err(e) => add(name, format!("listed in checksums.txt but unreadable: {e}")),
            Ok((got, _)) if got != *want => {
                add(name, format!("sha256 {got} does not match checksums.txt ({want})"))
            }
            Ok((_, n)) => {
                files_checked += 1;
                sizes.insert(name, n);
            }
        }
    }
    let listed_map: BTreeMap<&str, Sha256> = listed.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    if listed_map.len() != listed.len() {
        add(CHECKSUMS, "lists a file more than once".into());
    }
    // nothing unlisted, nothing but files and folders
    let mut n = 0;
    for e in walkdir::WalkDir::new(kit).min_depth(1).sort_by_file_name() {
        let e = match e {
            Err(e) => {
                add(".", format!("cannot list the kit: {e}"));
                continue;
            }
            Ok(e) if e.file_type().is_dir() => continue,
            Ok(e) => e,
        };
        n += 1;
        if n > MAX_KIT_FILES {
            add(".", format!("more than {MAX_KIT_FILES} files: stopped listing"));
            break;
        }
        let rel = e.path().strip_prefix(kit).unwrap_or(e.path()).to_string_lossy().into_owned();
        if !e.file_type().is_file() {
            add(&rel, "not a regular file".into());
        } else if rel != CHECKSUMS && !listed_map.contains_key(rel.as_str()) {
            add(&rel, "not listed in checksums.txt (extra file)".into());
        }
    }
    for f in [MANIFEST, SCRIPT] {
        if !listed_map.contains_key(f) {
            add(f, "not covered by checksums.txt".into());
        }
    }
    // manifest.json: consistent with checksums.txt
    let manifest: Option<KitManifest> = match read::read(kit, MANIFEST, MAX_KIT_TEXT) {
        Err(e) => {
            add(MANIFEST, format!("cannot read: {e}"));
            None
        }
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| add(MANIFEST, format!("not a kit manifest: {e}"))).ok()
        }
    };
    let mut exports = Vec::new();
    if let Some(m) = &manifest {
        if m.schema_version != SCHEMA {
            add(MANIFEST, format!("schemaVersion {} is not {SCHEMA}", shown::name(&m.schema_version)));
        }
        let mut claimed: BTreeSet<&str> = [MANIFEST, SCRIPT].into_iter().collect();
        let mut seen = BTreeSet::new();
        for e in &m.exports {
            let p = e.profile.as_str();
            if !profile_ok(p) {
                add(
                    MANIFEST,
                    format!("exports[] names profile {} that is not a kit folder name", shown::name(p)),
                );
                continue;
            }
            if !seen.insert(p) {
                add(MANIFEST, format!("profile {p} is listed twice"));
                continue;
            }
            let prefix = format!("{p}/");
            for f in &e.files {
                if !f.path.starts_with(&prefix) {
                    add(MANIFEST, format!("files[] of {p} names {} outside {prefix}", shown::name(&f.path)));
                    continue;
                }
                claimed.insert(f.path.as_str());
                match listed_map.get(f.path.as_str()) {
                    None => add(&f.path, "in manifest.json but not in checksums.txt".into()),
                    Some(s) if s.hex() != f.sha256 => add(
                        &f.path,
                        format!("manifest.json says sha256 {}, checksums.txt {s}", shown::name(&f.sha256)),
                    ),
                    Some(_) => {
                        if sizes.get(f.path.as_str()).is_some_and(|n| *n != f.size) {
                            add(&f.path, format!("manifest.json says {} bytes; the file differs", f.size));
                        }
                    }
                }
            }
            let root = [CHECKSUMS, "manifest.json"]
                .iter()
                .find_map(|r| e.files.iter().find(|f| f.path == format!("{prefix}{r}")))
                .map(|f| format!("sha256:{}", f.sha256));
            if root.as_deref() != Some(e.root_digest.as_str()) {
                add(MANIFEST, format!("rootDigest of {p} is not the digest of its checksums.txt"));
            }
            for (name, _) in listed.iter().filter(|(n, _)| n.starts_with(&prefix)) {
                if !e.files.iter().any(|f| &f.path == name) {
                    add(name, format!("in checksums.txt but not in manifest.json files[] of {p}"));
                }
            }
            // the export itself, checked as `verify` checks it
            let vo = VerifyOptions {
                trust_roots: opts.verify.trust_roots.clone(),
                require_signature: opts.verify.require_signature,
                profile: Some(p.to_string()),
                max_age: opts.verify.max_age.clone(),
            };
            let mut r = crate::ops::verify::verify(&kit.join(p), &vo);
            r.path = p.to_string();
            if r.created_at.is_some() && r.created_at != e.created_at {
                add(MANIFEST, format!("createdAt of {p} is not its export's"));
            }
            if export_kind(&kit.join(p)).is_some_and(|k| k != e.kind) {
                add(MANIFEST, format!("kind of {p} is not its export's"));
            }
            for pr in &r.problems {
                add(&format!("{prefix}{}", pr.file), pr.reason.clone());
            }
            exports.push(r);
        }
        for (name, _) in &listed {
            if !claimed.contains(name.as_str())
                && !m.exports.iter().any(|e| name.starts_with(&format!("{}/", e.profile)))
            {
                add(name, "in checksums.txt but in no export of manifest.json".into());
            }
        }
    }
    KitReport {
        path: kit.display().to_string(),
        ok: problems.is_empty(),
        kit_version: manifest.map(|m| m.kit_version),
        files_checked,
        problems,
        exports,
    }
}
