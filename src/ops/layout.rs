//! Where a build may write: the checks that keep publishing from replacing
//! anything that is not ours.
//!
//! Publishing replaces `out/<profile>/` wholesale, so before anything runs
//! [`check`] refuses (exit 2, naming the paths; nothing is touched) when:
//! - `out` is `/`, or exists and is not a folder;
//! - `out` and the cache overlap (equal, or one inside the other);
//! - `out` is or lies inside a source, or `out/<profile>` is or holds a
//!   source (`out` itself may hold sources: `out = "."` with the sources
//!   in the workspace is fine without a name clash), or the cache and a
//!   source overlap, or a signing key file lies inside `out`;
//! - `out/<profile>` of a profile to publish exists and is not a previous
//!   export of that profile ([`previous_export`]), e.g. `out = "."` and a
//!   profile named like a source folder;
//! - `out/.lock` exists and is not a regular file;
//! - `out/.generations` (earlier generations, [`super::generations`])
//!   exists and is not a real folder. It is never taken for a profile's
//!   export: profile names do not start with `.`.
//!
//! All comparisons use real paths ([`real`]): the existing prefix of a
//! path is canonicalised (symlinks and `..` resolved as the kernel does),
//! the rest normalised lexically, so `out = "x/../."` is the workspace.
//!
//! A previous export is recognised by its content alone, never by a marker
//! file (`verify` refuses extra files): a real folder (not a symlink)
//! holding a regular `manifest.json` whose `profile` and `kind` are this
//! profile's. Publishing re-checks this under the out lock just before
//! swapping. Invariant: nothing here writes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::profile::{KeySpec, ProfileDef, Workspace};
use crate::shown;

/// The largest `manifest.json` read to recognise a previous export.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// `p` as the kernel would resolve it: absolute, the existing prefix
/// canonicalised (symlinks followed), `.`/`..` in the rest applied lexically.
pub fn real(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|c| c.join(p)).unwrap_or_else(|_| p.to_path_buf())
    };
    let mut cur = PathBuf::from("/");
    // once a component is missing, what follows cannot be a symlink
    let mut exists = true;
    for c in abs.components() {
        match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                cur.pop();
            }
            Component::Normal(name) => {
                let next = cur.join(name);
                if exists && fs::symlink_metadata(&next).is_ok() {
                    cur = fs::canonicalize(&next).unwrap_or(next);
                } else {
                    exists = false;
                    cur = next;
                }
            }
        }
    }
    cur
}

/// How `a` and `b` overlap, in words (`None` when they do not).
fn relation(a: &Path, b: &Path) -> Option<&'static str> {
    if a == b {
        Some("is")
    } else if a.starts_with(b) {
        Some("is inside")
    } else if b.starts_with(a) {
        Some("holds")
    } else {
        None
    }
}

#[derive(serde::Deserialize)]
struct ManifestHead {
    profile: String,
    kind: String,
}

/// Whether `target` may be replaced by an export of `profile` (`kind`):
/// `Ok(false)` when nothing is there, `Ok(true)` when it is a previous
/// export of this profile, `Err(why)` for anything else.
pub fn previous_export(target: &Path, profile: &str, kind: &str) -> Result<bool, String> {
    let meta = match fs::symlink_metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("cannot inspect it: {e}")),
    };
    if meta.file_type().is_symlink() {
        return Err("it is a symbolic link, not a previous export".into());
    }
    if !meta.is_dir() {
        return Err("it is a file, not a previous export".into());
    }
    let manifest = target.join("manifest.json");
    let not_ours = |why: String| format!("it is not a previous export of this profile ({why})");
    match fs::symlink_metadata(&manifest) {
        Ok(m) if m.is_file() && m.len() <= MAX_MANIFEST_BYTES => {}
        Ok(m) if m.is_file() => return Err(not_ours("its manifest.json is too large".into())),
        Ok(_) => return Err(not_ours("its manifest.json is not a regular file".into())),
        Err(_) => return Err(not_ours("no manifest.json".into())),
    }
    let f = fs::File::open(&manifest).map_err(|e| not_ours(format!("manifest.json: {e}")))?;
    let reader = std::io::BufReader::new(f.take(MAX_MANIFEST_BYTES));
    let head: ManifestHead = serde_json::from_reader(reader)
        .map_err(|e| not_ours(format!("manifest.json names no profile and kind: {e}")))?;
    if head.profile != profile || head.kind != kind {
        return Err(not_ours(format!(
            "its manifest.json names profile \"{}\" of kind \"{}\"",
            shown::name(&head.profile),
            shown::name(&head.kind)
        )));
    }
    Ok(true)
}

/// Refuse a layout where publishing `profiles` could replace or feed
/// anything else (see the module doc). Reads only.
pub fn check(ws: &Workspace, profiles: &[&ProfileDef]) -> Result<(), Error> {
    let out = real(&ws.out_dir);
    let cache = real(&ws.cache_dir);
    let show = |p: &Path| shown::path(p);
    let mut problems = Vec::new();
    if out.parent().is_none() {
        problems.push("out is the root folder /".to_string());
    }
    match fs::metadata(&out) {
        Ok(m) if !m.is_dir() => problems.push(format!("out {} is not a folder", show(&out))),
        _ => {}
    }
    if let Some(r) = relation(&out, &cache) {
        problems.push(format!("out {} {r} the cache {}", show(&out), show(&cache)));
    }
    // one line per relation, however many sources share it (`out = "."` holds them all)
    let mut by_relation: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in ws.sources.values() {
        let src = real(&s.path);
        for (what, at) in [("out", &out), ("the cache", &cache)] {
            if let Some(r) = relation(at, &src) {
                // out may hold a source (out = "." with sources in the workspace):
                // only an export folder that is, or holds, the source is a clash
                if what == "out" && r == "holds" {
                    for p in profiles.iter().filter(|p| src.starts_with(out.join(&p.name))) {
                        problems.push(format!(
                            "profile {} publishes to {}, which holds source {} ({})",
                            p.name,
                            show(&out.join(&p.name)),
                            s.name,
                            show(&src)
                        ));
                    }
                    continue;
                }
                let key = format!("{what} {} {r}", show(at));
                by_relation.entry(key).or_default().push(format!("{} ({})", s.name, show(&src)));
            }
        }
    }
    for (head, list) in by_relation {
        let noun = if list.len() == 1 { "source" } else { "sources" };
        problems.push(format!("{head} {noun} {}", list.join(", ")));
    }
    let keys = ws.signing.iter().chain(ws.profiles.values().filter_map(|p| p.signing.as_ref()));
    for k in keys {
        if let KeySpec::File(f) = k {
            let f = real(f);
            if f.starts_with(&out) {
                problems.push(format!("out {} holds the signing key {}", show(&out), show(&f)));
            }
        }
    }
    // earlier generations live beside the exports (never a profile: names do not start with '.')
    let gens = out.join(super::generations::DIR);
    if let Ok(m) = fs::symlink_metadata(&gens) {
        if !m.is_dir() {
            problems
                .push(format!("{} is not a folder (it holds earlier generations of exports)", show(&gens)));
        }
    }
    let lock = out.join(".lock");
    if let Ok(m) = fs::symlink_metadata(&lock) {
        if !m.is_file() {
            problems.push(format!("{} is not a regular file", show(&lock)));
        }
    }
    for p in profiles {
        let target = out.join(&p.name);
        if let Err(why) = previous_export(&target, &p.name, &p.kind) {
            problems.push(format!(
                "profile {} would replace {}: {why}; move it away or pick another out",
                p.name,
                show(&target)
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    problems.dedup();
    Err(Error::Usage(format!(
        "{}: workspace.out/cache: refusing to publish here, nothing was touched:\n  {}",
        show(&ws.file),
        problems.join("\n  ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_resolves_dots_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(d.path()).unwrap();
        fs::create_dir(root.join("x")).unwrap();
        std::os::unix::fs::symlink(root.join("x"), root.join("link")).unwrap();
        assert_eq!(real(&root.join("x/../.")), root);
        assert_eq!(real(&root.join("link")), root.join("x"));
        assert_eq!(real(&root.join("link/../x")), root.join("x"));
        assert_eq!(real(&root.join("missing/../x/new")), root.join("x/new"));
        assert_eq!(real(&root.join("link/a/b/../c")), root.join("x/a/c"));
        assert_eq!(real(Path::new("/..")), Path::new("/"));
    }

    #[test]
    fn only_this_profiles_export_is_replaceable() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("p");
        assert_eq!(previous_export(&t, "p", "json:raw"), Ok(false));
        fs::create_dir(&t).unwrap();
        assert!(previous_export(&t, "p", "json:raw").is_err());
        fs::write(t.join("manifest.json"), r#"{"profile":"p","kind":"json:raw","x":[1]}"#).unwrap();
        assert_eq!(previous_export(&t, "p", "json:raw"), Ok(true));
        assert!(previous_export(&t, "q", "json:raw").is_err());
        assert!(previous_export(&t, "p", "trivy:db").is_err());
        std::os::unix::fs::symlink(&t, d.path().join("l")).unwrap();
        assert!(previous_export(&d.path().join("l"), "p", "json:raw").is_err());
        fs::write(d.path().join("f"), b"x").unwrap();
        assert!(previous_export(&d.path().join("f"), "p", "json:raw").is_err());
    }
}
