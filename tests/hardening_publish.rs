//! Issue 8, items 1, 10 and 12: publishing never replaces what is not a
//! previous export, a layout where it could is refused before anything
//! runs, names in the invalid-input summary are escaped, and a partly
//! failed publish reports every profile's status.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{age, finish, Run, BIN};

/// One OSV document; `details` pads it (incompressible when `noise` > 0).
fn osv_doc(id: &str, noise: usize) -> String {
    let mut details = String::from("details");
    let mut h = [0u8; 32];
    for i in 0..noise {
        use sha2::Digest;
        h = sha2::Sha256::digest([&h[..], &i.to_le_bytes()].concat()).into();
        details.push_str(&hex::encode(h));
    }
    serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2024-01-01T00:00:00Z",
        "published": "2024-01-01T00:00:00Z",
        "summary": format!("summary of {id}"),
        "details": details,
        "affected": [{
            "package": {"ecosystem": "PyPI", "name": "pkg", "purl": "pkg:pypi/pkg"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0.0"}, {"fixed": "1.2.0"}]}]
        }]
    })
    .to_string()
}

fn write_doc(dir: &Path, name: &str, body: &str) {
    fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    fs::write(&p, body).unwrap();
    age(&p);
}

/// `<tmp>/ws/profiles.toml` with `[workspace]` lines `ws`, and a source
/// `src` at `<tmp>/data/src` (outside the workspace folder) holding one
/// document, plus `profiles`.
fn workspace(ws: &str, profiles: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    fs::create_dir_all(&root).unwrap();
    write_doc(&tmp.path().join("data/src"), "A-1.json", &osv_doc("A-1", 0));
    fs::write(
        root.join("profiles.toml"),
        format!(
            "[workspace]\nsource-date-epoch = 1735689600\n{ws}\n\n[sources.src]\nformat = \"osv\"\n\
             path = \"../data/src\"\n\n{profiles}"
        ),
    )
    .unwrap();
    (tmp, root)
}

fn profile(name: &str, input: &str) -> String {
    format!("[profiles.{name}]\nkind = \"json:raw\"\ninputs = [\"{input}\"]\n")
}

fn run(ws: &Path, args: &[&str]) -> Run {
    common::run(ws, args)
}

/// Every file below `dir` with its bytes (symlinks not followed).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            v.push((e.path().to_path_buf(), fs::read(e.path()).unwrap()));
        }
    }
    v
}

fn refused(r: &Run, needles: &[&str]) {
    assert_eq!(r.code, 2, "exit 2 expected:\n{}\n{}", r.stdout, r.stderr);
    for n in needles {
        assert!(r.stderr.contains(n), "stderr names {n:?}:\n{}", r.stderr);
    }
}

#[test]
fn out_root_is_refused() {
    // a name nobody has at /; removed again below should old code publish it
    let name = "export-center-hardening-root-test";
    let (_t, ws) =
        workspace("out = \"x/../../../../../../../../../../../../../../../../..\"", &profile(name, "src"));
    let lock = Path::new("/.lock");
    let had_lock = fs::symlink_metadata(lock).is_ok();
    let r = run(&ws, &["build", "--json"]);
    // undo what a build that wrongly accepted / would leave there
    let stray = Path::new("/").join(name);
    if stray.join("manifest.json").is_file() {
        fs::remove_dir_all(&stray).unwrap();
    }
    if !had_lock && fs::metadata(lock).is_ok_and(|m| m.is_file() && m.len() == 0) {
        let _ = fs::remove_file(lock);
    }
    refused(&r, &["workspace.out", "root folder"]);
    assert!(!stray.exists());
    let j = r.json();
    assert_eq!(j["exitCode"], 2);
    assert_eq!(j["profiles"][name]["status"], "not-published", "{j}");
}

#[test]
fn out_that_is_a_file_is_refused_before_anything_runs() {
    let (t, ws) = workspace("out = \"out.txt\"\ncache = \"../cache\"", &profile("p", "src"));
    fs::write(ws.join("out.txt"), "notes").unwrap();
    refused(&run(&ws, &["build"]), &["out.txt", "is not a folder"]);
    assert_eq!(fs::read_to_string(ws.join("out.txt")).unwrap(), "notes");
    assert!(!t.path().join("cache").exists(), "refused before anything ran");
}

#[test]
fn out_as_workspace_refuses_a_name_clash_and_keeps_the_folder() {
    // the cache and the source live outside the workspace folder: only the clash is wrong
    let profiles = format!("{}{}", profile("notes", "src"), profile("fine", "src"));
    let (t, ws) = workspace("out = \"x/../.\"\ncache = \"../cache\"", &profiles);
    fs::create_dir_all(ws.join("notes/deep")).unwrap();
    fs::write(ws.join("notes/deep/todo.txt"), "mine").unwrap();
    let before = snapshot(&ws);
    let r = run(&ws, &["build", "--json"]);
    refused(&r, &["profile notes would replace", "notes", "no manifest.json"]);
    assert_eq!(snapshot(&ws), before, "nothing touched");
    assert!(!t.path().join("cache").exists(), "refused before anything ran");
    let j = r.json();
    assert_eq!(j["profiles"]["notes"]["status"], "not-published");
    assert_eq!(j["profiles"]["fine"]["status"], "not-published");

    // without the clash, out = the workspace folder works, and republishing replaces only our export
    let r = run(&ws, &["build", "--json", "fine"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["profiles"]["fine"]["status"], "published");
    write_doc(&t.path().join("data/src"), "A-2.json", &osv_doc("A-2", 0));
    let r = run(&ws, &["build", "--json", "fine"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["profiles"]["fine"]["status"], "published");
    assert!(ws.join("notes/deep/todo.txt").is_file());
}

#[test]
fn out_overlapping_the_cache_is_refused() {
    // out = cache with a profile named like the CAS folder
    let (_t, ws) = workspace("out = \"c\"\ncache = \"c/.\"", &profile("cas", "src"));
    refused(&run(&ws, &["build"]), &["out", "is the cache"]);
    assert!(!ws.join("c").exists());
    // the cache inside out, with a profile named like it
    let (_t, ws) = workspace("out = \"o\"\ncache = \"o/cache\"", &profile("cache", "src"));
    refused(&run(&ws, &["build"]), &["holds the cache"]);
    assert!(!ws.join("o").exists());
    // out inside the cache
    let (_t, ws) = workspace("out = \"c/out\"\ncache = \"c\"", &profile("p", "src"));
    refused(&run(&ws, &["build"]), &["is inside the cache"]);
}

#[test]
fn out_overlapping_a_source_is_refused() {
    for (out, needle) in [("../data/src", "is source src"), ("../data/src/o", "is inside source src")] {
        let (t, ws) = workspace(&format!("out = \"{out}\""), &profile("p", "src"));
        let before = snapshot(t.path());
        refused(&run(&ws, &["build"]), &[needle]);
        assert_eq!(snapshot(t.path()), before, "{out}: nothing touched");
    }
    // out may hold a source, as long as no export folder is or holds it
    let (t, ws) = workspace("out = \"../data\"", &profile("src", "src"));
    let before = snapshot(t.path());
    refused(&run(&ws, &["build"]), &["profile src", "holds source src"]);
    assert_eq!(snapshot(t.path()), before, "nothing touched");
    let (t, ws) = workspace("out = \"../data\"", &profile("p", "src"));
    let r = run(&ws, &["build"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(t.path().join("data/p/manifest.json").is_file());
    assert!(t.path().join("data/src/A-1.json").is_file(), "the source is untouched");
    // through a symlink to the source folder
    let (t, ws) = workspace("out = \"link\"", &profile("p", "src"));
    std::os::unix::fs::symlink(t.path().join("data/src"), ws.join("link")).unwrap();
    refused(&run(&ws, &["build"]), &["is source src"]);
}

#[test]
fn a_folder_that_is_not_our_export_is_never_replaced() {
    let (t, ws) = workspace("", &profile("p", "src"));
    let target = ws.join("out/p");

    // a user folder without a manifest
    fs::create_dir_all(&target).unwrap();
    fs::write(target.join("keep.txt"), "mine").unwrap();
    refused(&run(&ws, &["build"]), &["out/p", "no manifest.json"]);
    assert_eq!(fs::read_to_string(target.join("keep.txt")).unwrap(), "mine");

    // another profile's export (or kind) is not ours either
    fs::write(target.join("manifest.json"), r#"{"profile":"q","kind":"json:raw"}"#).unwrap();
    refused(&run(&ws, &["build"]), &["out/p", "names profile \"q\""]);
    fs::write(target.join("manifest.json"), r#"{"profile":"p","kind":"trivy:db"}"#).unwrap();
    refused(&run(&ws, &["build"]), &["kind \"trivy:db\""]);
    assert!(target.join("keep.txt").is_file());
    fs::remove_dir_all(&target).unwrap();

    // a regular file
    fs::write(&target, "a file").unwrap();
    refused(&run(&ws, &["build"]), &["out/p", "is a file"]);
    assert_eq!(fs::read_to_string(&target).unwrap(), "a file");
    fs::remove_file(&target).unwrap();

    // a symlink, even to a real export of p
    let elsewhere = t.path().join("elsewhere");
    let (_t2, ws2) = workspace("", &profile("p", "src"));
    assert_eq!(run(&ws2, &["build"]).code, 0);
    common::copy_dir(&ws2.join("out/p"), &elsewhere);
    std::os::unix::fs::symlink(&elsewhere, &target).unwrap();
    let before = snapshot(&elsewhere);
    write_doc(&t.path().join("data/src"), "A-2.json", &osv_doc("A-2", 0));
    refused(&run(&ws, &["build"]), &["out/p", "symbolic link"]);
    assert_eq!(snapshot(&elsewhere), before);
    assert!(fs::symlink_metadata(&target).unwrap().file_type().is_symlink());
    fs::remove_file(&target).unwrap();

    // our own previous export is replaced as before
    let r = run(&ws, &["build", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    write_doc(&t.path().join("data/src"), "A-3.json", &osv_doc("A-3", 0));
    let r = run(&ws, &["build", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["profiles"]["p"]["status"], "published");
}

#[test]
fn staging_cleanup_removes_only_our_own_leftovers() {
    let (t, ws) = workspace("", &profile("p", "src"));
    let out = ws.join("out");
    let victim = t.path().join("victim");
    fs::create_dir_all(&victim).unwrap();
    fs::write(victim.join("v.txt"), "v").unwrap();
    let theirs = [".staging-notes", ".staging-p-abc", ".staging-q-Ab12Cd", ".staging-p-Ab12Cd-x"];
    for n in theirs {
        fs::create_dir_all(out.join(n)).unwrap();
        fs::write(out.join(n).join("f"), "user data").unwrap();
    }
    fs::write(out.join(".staging-p-Zz9xY1"), "a file, not our folder").unwrap();
    std::os::unix::fs::symlink(&victim, out.join(".staging-p-Lk5Lk5")).unwrap();
    fs::create_dir_all(out.join(".staging-p-Ab12Cd/sub")).unwrap(); // a crashed publisher's
    let r = run(&ws, &["build"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for n in theirs {
        assert!(out.join(n).join("f").is_file(), "{n} kept");
    }
    assert!(out.join(".staging-p-Zz9xY1").is_file());
    assert!(fs::symlink_metadata(out.join(".staging-p-Lk5Lk5")).is_ok());
    assert!(victim.join("v.txt").is_file());
    assert!(!out.join(".staging-p-Ab12Cd").exists(), "our leftover removed");
}

#[test]
fn lock_that_is_not_a_regular_file_is_refused() {
    let (t, ws) = workspace("", &profile("p", "src"));
    fs::create_dir_all(ws.join("out")).unwrap();
    let elsewhere = t.path().join("not-created");
    std::os::unix::fs::symlink(&elsewhere, ws.join("out/.lock")).unwrap();
    refused(&run(&ws, &["build"]), &[".lock", "not a regular file"]);
    assert!(!elsewhere.exists(), "a lock symlink is never followed");
    fs::remove_file(ws.join("out/.lock")).unwrap();
    fs::create_dir(ws.join("out/.lock")).unwrap();
    refused(&run(&ws, &["build"]), &[".lock", "not a regular file"]);
}

/// Published files are hard links to verified cache blobs (nothing is
/// copied). A published file changed in place by hand changes the blob
/// too: the next build finds it (exit 0), rebuilds the blob and publishes
/// the right bytes again.
#[test]
fn published_files_share_cache_blobs_and_a_file_changed_in_place_heals() {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let (_t, ws) = workspace("", &profile("a", "src"));
    assert_eq!(run(&ws, &["build"]).code, 0);
    let good = snapshot(&ws.join("out/a"));
    let (big, _) = good.iter().max_by_key(|(_, b)| b.len()).unwrap().clone();
    let p = ws.join("out/a").join(&big);
    assert!(fs::metadata(&p).unwrap().nlink() >= 2, "{} is a link to its cache blob", big.display());
    fs::OpenOptions::new().write(true).open(&p).unwrap().write_at(b"\xff\xfe", 40).unwrap();
    assert!(snapshot(&ws.join("out/a")) != good);
    let r = run(&ws, &["build"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(snapshot(&ws.join("out/a")) == good, "the export is published right again");
    assert_eq!(run(&ws, &["verify", "out/a"]).code, 0);
}

/// `build` with writes capped at `limit` bytes per file (EFBIG, SIGXFSZ ignored).
fn build_capped(ws: &Path, limit: u64, json: bool) -> Run {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(BIN);
    c.arg("-C").arg(ws).arg("build").env_remove("SOURCE_DATE_EPOCH").env_remove("EXPORT_CENTER_CRASH_AT");
    if json {
        c.arg("--json");
    }
    // SAFETY: only async-signal-safe calls between fork and exec
    unsafe {
        c.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    finish(c.output().unwrap())
}

#[test]
fn a_partly_failed_publish_reports_every_profile() {
    use std::os::unix::fs::MetadataExt;
    let profiles = format!("{}{}{}", profile("a", "src"), profile("b", "big"), profile("c", "src"));
    // publishing hard-links cache blobs into out/ and writes nothing there; it
    // writes (and can fail to) when the cache is on another file system
    let dev = |p: &Path| fs::metadata(p).unwrap().dev();
    let Some(shm) =
        tempfile::tempdir_in("/dev/shm").ok().filter(|d| dev(d.path()) != dev(&std::env::temp_dir()))
    else {
        println!("SKIP a_partly_failed_publish_reports_every_profile: /dev/shm is not a separate file system, so out/ cannot be made to need a copy");
        return;
    };
    let (t, ws) = workspace(&format!("cache = \"{}\"", shm.path().join("cache").display()), &profiles);
    let mut toml = fs::read_to_string(ws.join("profiles.toml")).unwrap();
    toml.push_str("\n[sources.big]\nformat = \"osv\"\npath = \"../data/big\"\n");
    fs::write(ws.join("profiles.toml"), toml).unwrap();
    // ~1 MB of incompressible text: b's bundle cannot be written under the cap
    write_doc(&t.path().join("data/big"), "B-1.json", &osv_doc("B-1", 16_000));
    let limit = 256 << 10;
    // warm the cache without the cap, then make every profile republish under it
    assert_eq!(run(&ws, &["build"]).code, 0);
    let bundle_sizes: Vec<u64> = ["a", "b", "c"]
        .iter()
        .map(|p| snapshot(&ws.join("out").join(p)).iter().map(|(_, b)| b.len() as u64).max().unwrap())
        .collect();
    assert!(
        bundle_sizes[0] < limit && bundle_sizes[1] > limit && bundle_sizes[2] < limit,
        "{bundle_sizes:?}"
    );
    fs::remove_dir_all(ws.join("out")).unwrap();

    let r = build_capped(&ws, limit, true);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["profiles"]["a"]["status"], "published", "{j}");
    assert_eq!(j["profiles"]["b"]["status"], "failed", "{j}");
    assert_eq!(j["profiles"]["c"]["status"], "published", "{j}");
    let err = j["profiles"]["b"]["error"].as_str().unwrap();
    let out = fs::canonicalize(ws.join("out")).unwrap();
    assert!(err.contains(&*out.to_string_lossy()), "names the file in out/: {err}");
    assert!(!err.contains("/cache/"), "does not blame a cache blob: {err}");
    assert!(j["error"].as_str().unwrap().contains("profile b"), "{j}");
    assert!(ws.join("out/a/manifest.json").is_file() && ws.join("out/c/manifest.json").is_file());
    assert!(!ws.join("out/b").exists(), "nothing half-built is published");
    let leftovers: Vec<_> = fs::read_dir(ws.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".staging"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // the human report lists each profile's status too
    fs::remove_dir_all(ws.join("out/a")).unwrap();
    let r = build_capped(&ws, limit, false);
    assert_eq!(r.code, 1, "{}", r.stderr);
    for line in ["a: published", "b: failed", "c: up-to-date"] {
        assert!(r.stderr.contains(line), "{line:?} in:\n{}", r.stderr);
    }
}

#[test]
fn rejected_names_in_the_summary_are_escaped() {
    let (t, ws) = workspace("", &profile("p", "src"));
    write_doc(&t.path().join("data/src"), "x\nerror: none\u{1b}[31m.json", "{ not json");
    let r = run(&ws, &["build"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("x\\nerror: none\\u{1b}[31m.json"), "{}", r.stderr);
    assert!(!r.stderr.contains('\u{1b}'), "no terminal escape reaches stderr:\n{}", r.stderr);
    assert!(!r.stderr.lines().any(|l| l.starts_with("error: none")), "no forged line:\n{}", r.stderr);
}
