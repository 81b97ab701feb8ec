//! Code fingerprints: which source files an action's output bytes depend on.
//!
//! `build.rs` hashes every file under `src/` and `rules/` and `Cargo.lock`
//! into [`files`], a table `(path relative to the crate root, SHA-256)`,
//! sorted by path. A file that tests an enabled cargo feature is hashed
//! with that feature's name, so a feature that changes code changes the
//! digest. Each action declares the files it depends on as path prefixes
//! (`"src/formats/tar.rs"`, or a folder ending in `/`); its fingerprint is a
//! digest over the (path, digest) rows those prefixes match, plus
//! `Cargo.lock` (dependency versions: zstd, flate2, rusqlite, serde_json
//! can change bytes too), and enters every step key of the action. So a
//! binary built from other code for an action re-runs exactly that
//! action's steps, whatever its hand-kept version says.
//!
//! Invariants: the table holds only file contents and enabled feature
//! names (never absolute paths, mtimes or the environment), so two builds
//! of one commit with the same features agree; a declared prefix that
//! matches no file is a bug (tested for every action, so moving a file
//! without moving its declaration fails a test).

use crate::digest::{Digest, FieldHasher};

mod table {
    include!(concat!(env!("OUT_DIR"), "/code_files.rs"));
}

/// Always part of every fingerprint: the versions of every dependency.
pub const LOCKFILE: &str = "Cargo.lock";

/// Every hashed file: (path relative to the crate root, SHA-256 hex), sorted.
pub fn files() -> &'static [(&'static str, &'static str)] {
    table::FILES
}

/// Whether `path` is covered by `prefix` (the same file, or a file inside
/// the folder `prefix` ending in `/`).
pub fn covers(prefix: &str, path: &str) -> bool {
    path == prefix || (prefix.ends_with('/') && path.starts_with(prefix))
}

/// The prefixes that match no file in the table.
pub fn unmatched<'a>(prefixes: &[&'a str]) -> Vec<&'a str> {
    prefixes.iter().copied().filter(|p| !files().iter().any(|(f, _)| covers(p, f))).collect()
}

/// The fingerprint of code declared by `prefixes`: a digest over the sorted
/// (path, digest) rows they match and the lockfile's row.
pub fn fingerprint(prefixes: &[&str]) -> Digest {
    fingerprint_of(files(), prefixes)
}

fn fingerprint_of(table: &[(&str, &str)], prefixes: &[&str]) -> Digest {
    let mut h = FieldHasher::new("code-fingerprint-v1");
    for (path, digest) in table {
        if *path == LOCKFILE || prefixes.iter().any(|p| covers(p, path)) {
            h.field(path.as_bytes()).field(digest.as_bytes());
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_every_source_file_sorted_once() {
        let t = files();
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "sorted, no duplicates");
        for must in ["src/lib.rs", "src/code.rs", "src/kinds/json_raw/rule.toml", LOCKFILE] {
            assert!(t.iter().any(|(p, _)| *p == must), "{must} missing from the code table");
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let on_disk =
            walkdir::WalkDir::new(&src).into_iter().filter(|e| e.as_ref().unwrap().file_type().is_file());
        assert_eq!(on_disk.count(), t.iter().filter(|(p, _)| p.starts_with("src/")).count());
        // the digest is the file's SHA-256 (no enabled feature is tested by lib.rs)
        let lib = std::fs::read(src.join("lib.rs")).unwrap();
        let want = crate::digest::Sha256::of(&lib).hex();
        assert_eq!(t.iter().find(|(p, _)| *p == "src/lib.rs").unwrap().1, want);
    }

    #[test]
    fn fingerprint_depends_on_exactly_the_matched_rows_and_the_lockfile() {
        let t = [("Cargo.lock", "l1"), ("src/a.rs", "a1"), ("src/b/x.rs", "x1"), ("src/c.rs", "c1")];
        let base = fingerprint_of(&t, &["src/a.rs", "src/b/"]);
        let with = |i: usize, d: &'static str| {
            let mut t2 = t;
            t2[i].1 = d;
            fingerprint_of(&t2, &["src/a.rs", "src/b/"])
        };
        assert_ne!(base, with(0, "l2"), "the lockfile is in every fingerprint");
        assert_ne!(base, with(1, "a2"));
        assert_ne!(base, with(2, "x2"), "a folder prefix covers its files");
        assert_eq!(base, with(3, "c2"), "an undeclared file is not in the fingerprint");
        assert_eq!(base, fingerprint_of(&t, &["src/b/", "src/a.rs", "src/a.rs"]), "order and repeats");
        assert!(!covers("src/b", "src/b/x.rs") && !covers("src/a.r", "src/a.rs"), "no partial names");
    }

    #[test]
    fn a_prefix_matching_no_file_is_reported() {
        assert_eq!(unmatched(&["src/lib.rs", "src/no-such/", "src/key.rs"]), vec!["src/no-such/"]);
    }
}
