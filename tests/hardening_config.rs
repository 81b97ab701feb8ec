//! Issue 8, the same class as items 3 and 4 found elsewhere: the workspace
//! files a build reads first (`profiles.toml`, `rules/*.toml`) are read
//! only when they are regular files under a size limit. A FIFO used to
//! block the build forever and `/dev/zero` behind a symlink to read until
//! memory ran out.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Run the binary with a watchdog: a hang is the bug, so kill it after a
/// generous limit and report it as such.
fn run_watched(ws: &std::path::Path, args: &[&str]) -> Run {
    let mut child = cmd(ws).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return finish(child.wait_with_output().unwrap());
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("export-center {args:?} hung (killed after 60 s)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mkfifo(p: &std::path::Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn profiles_toml_fifo_is_refused_not_waited_on() {
    let ws = tempfile::tempdir().unwrap();
    mkfifo(&ws.path().join("profiles.toml"));
    let r = run_watched(ws.path(), &["plan"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("profiles.toml") && r.stderr.contains("not a regular file"), "{}", r.stderr);
}

#[test]
fn profiles_toml_linked_to_dev_zero_is_refused() {
    let ws = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", ws.path().join("profiles.toml")).unwrap();
    let r = run_watched(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
}

#[test]
fn oversized_rule_file_is_refused_naming_it() {
    let ws = sample_workspace();
    std::fs::create_dir_all(ws.path().join("rules")).unwrap();
    let f = std::fs::File::create(ws.path().join("rules/huge.toml")).unwrap();
    f.set_len(17 << 20).unwrap(); // sparse: 17 MiB of zeros, over the 16 MiB limit
    let r = run_watched(ws.path(), &["plan"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("rules/huge.toml") && r.stderr.contains("limit"), "{}", r.stderr);
}
