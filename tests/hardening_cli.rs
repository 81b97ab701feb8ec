//! Hardening of the command line as a user meets it (issue 8, items 6, 10,
//! 13, 14, 17): `--jobs` bounds, closed pipes, colour on terminals only,
//! a stripped release binary.
//!
//! Pipes are real: a reader closed before the child starts (as `| head -1`
//! is by the time the second line comes) or after one line. Every child
//! runs under a generous watchdog that kills it if it hangs (a hang is the
//! bug; nothing here asserts speed). `HARDENING_BIN=path` runs these tests
//! against another build of the binary (e.g. an old one, to see them fail).

mod common;

use std::io::{BufRead, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn bin() -> PathBuf {
    std::env::var_os("HARDENING_BIN").map_or_else(|| PathBuf::from(BIN), PathBuf::from)
}

fn cmd(ws: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("-C")
        .arg(ws)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("EXPORT_CENTER_CRASH_AT")
        .env_remove("EXPORT_CENTER_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    c
}

/// Wait for `child`; kill it and fail if it is still running after 10 minutes.
fn wait(mut child: Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: hung (killed by the watchdog)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The write end of a pipe whose reader is already gone.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

/// Exit 0, or death by SIGPIPE as `seq 10 | head -1` ends; never a panic (101).
fn quiet_stop(s: ExitStatus) -> bool {
    s.code() == Some(0) || s.signal() == Some(libc::SIGPIPE)
}

/// One osv source (the pypi samples) and an empty one (which warns on
/// every snapshot), both feeding json:raw profile `p`.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("samples/osv/pypi"), &dir.path().join("data/pypi"));
    std::fs::create_dir_all(dir.path().join("data/empty")).unwrap();
    std::fs::write(
        dir.path().join("profiles.toml"),
        "[workspace]\nsource-date-epoch = 1735689600\n\n\
         [sources.src]\nformat = \"osv\"\npath = \"data/pypi\"\n\n\
         [sources.empty]\nformat = \"osv\"\npath = \"data/empty\"\n\n\
         [profiles.p]\nkind = \"json:raw\"\ninputs = [\"src\", \"empty\"]\n",
    )
    .unwrap();
    dir
}

fn output(c: &mut Command, what: &str) -> Run {
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // read both pipes on threads, so a chatty child cannot block on a full pipe
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait(child, what);
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&t_out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
    }
}

fn published(ws: &Path) -> bool {
    ws.join("out/p/manifest.json").is_file()
}

// ---------------------------------------------------------------- item 6

#[test]
fn jobs_beyond_the_limit_are_refused_before_anything_runs() {
    let ws = workspace();
    for jobs in ["10000", "257", "0"] {
        let r = output(&mut cmd(ws.path(), &["build", "--jobs", jobs]), "build --jobs");
        assert_eq!(r.code, 2, "--jobs {jobs}: exit 2 expected\n{}", r.stderr);
        assert!(r.stderr.contains(&format!("--jobs {jobs}")), "names the flag: {}", r.stderr);
        assert!(r.stderr.contains("256"), "names the limit: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert!(!ws.path().join("out").exists(), "nothing ran");
        let r = output(&mut cmd(ws.path(), &["build", "--json", "--jobs", jobs]), "build --json --jobs");
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert_eq!(r.json()["exitCode"], 2, "--json still answers with one object");
    }
}

#[test]
fn jobs_at_the_limit_build() {
    let ws = workspace();
    let r = output(&mut cmd(ws.path(), &["build", "--jobs", "256"]), "build --jobs 256");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(published(ws.path()));
}

// ---------------------------------------------------------------- item 13

#[test]
fn commands_stop_quietly_when_stdout_is_closed() {
    let ws = workspace();
    let r = output(&mut cmd(ws.path(), &["build"]), "build");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let commands: &[&[&str]] = &[
        &["plan"],
        &["plan", "--json"],
        &["explain", "--all"],
        &["explain", "--json"],
        &["graph"],
        &["graph", "--format", "json"],
        &["cache", "stats"],
        &["cache", "stats", "--json"],
        &["cache", "verify"],
        &["cache", "gc", "--max-size", "1G"],
        &["keygen", "--out", "k"],
        &["--help"],
    ];
    for args in commands {
        let mut child = cmd(ws.path(), args).stdout(closed_pipe()).stderr(Stdio::piped()).spawn().unwrap();
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let s = wait(child, &args.join(" "));
        assert!(quiet_stop(s), "{args:?} on a closed stdout: {s:?}\n{err}");
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
    }
    assert!(ws.path().join("k.key").is_file(), "keygen did its work before printing");
}

#[test]
fn a_build_outlives_its_log_reader() {
    // stderr closed before the first line: the warning, every --explain line and the summary fail
    let ws = workspace();
    let child = cmd(ws.path(), &["build", "--explain"]).stdout(Stdio::null()).stderr(closed_pipe()).spawn();
    let s = wait(child.unwrap(), "build --explain 2>closed");
    assert_eq!(s.code(), Some(0), "{s:?}");
    assert!(published(ws.path()), "the build finished and published");

    // `build --json | head -0`: the report cannot be written, the export is still published
    let ws = workspace();
    let child = cmd(ws.path(), &["build", "--json"]).stdout(closed_pipe()).stderr(closed_pipe()).spawn();
    let s = wait(child.unwrap(), "build --json >closed");
    assert_eq!(s.code(), Some(0), "{s:?}");
    assert!(published(ws.path()));

    // `build --explain 2>&1 | head -1`: one line read, then the reader goes away
    let ws = workspace();
    let child = cmd(ws.path(), &["build", "--explain"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn();
    let mut child = child.unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    assert!(!line.is_empty());
    let s = wait(child, "build --explain 2>&1 | head -1");
    assert_eq!(s.code(), Some(0), "{s:?}");
    assert!(published(ws.path()));
}

#[test]
fn a_build_on_a_closed_pipe_keeps_its_own_exit_code() {
    let ws = workspace();
    std::fs::write(ws.path().join("data/pypi/bad.json"), "{ not json").unwrap();
    age(&ws.path().join("data/pypi/bad.json"));
    let r = output(&mut cmd(ws.path(), &["build", "--json"]), "build --json");
    assert_eq!(r.code, 2, "an invalid document fails the build: {}", r.stderr);
    let child = cmd(ws.path(), &["build", "--json"]).stdout(closed_pipe()).stderr(closed_pipe()).spawn();
    let s = wait(child.unwrap(), "build --json >closed 2>closed");
    assert_eq!(s.code(), Some(2), "exit code as if the pipe were fine: {s:?}");
    assert!(!published(ws.path()));
}

// ---------------------------------------------------------------- item 14

#[test]
fn warnings_are_plain_text_off_a_terminal() {
    let ws = workspace();
    let r = output(&mut cmd(ws.path(), &["plan"]), "plan");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("WARN") && r.stderr.contains("no document under"), "{}", r.stderr);
    assert!(!r.stderr.contains('\u{1b}'), "no escape codes in a pipe: {:?}", r.stderr);
}

/// A new pseudo-terminal: (master, path of the slave), or None where ptys are unavailable.
fn pty() -> Option<(std::fs::File, String)> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc calls on a fd we own; the buffer outlives ptsname_r.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        if m < 0 {
            return None;
        }
        let master = std::fs::File::from_raw_fd(m);
        let mut buf = [0 as libc::c_char; 256];
        if libc::grantpt(m) != 0
            || libc::unlockpt(m) != 0
            || libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()) != 0
        {
            return None;
        }
        Some((master, std::ffi::CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()))
    }
}

/// Run `plan` with stderr on a terminal; returns what the terminal showed.
fn plan_on_a_terminal(ws: &Path, no_color: Option<&str>) -> Option<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let (mut master, slave) = pty()?;
    let slave =
        std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open(slave).ok()?;
    let mut c = cmd(ws, &["plan"]);
    if let Some(v) = no_color {
        c.env("NO_COLOR", v);
    }
    let child = c.stdout(Stdio::null()).stderr(Stdio::from(slave)).spawn().unwrap();
    drop(c); // the parent's copy of the slave: reading ends when the child's closes
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let mut buf = [0u8; 4096];
        // a pty master reads EIO once the last slave fd is closed
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            v.extend_from_slice(&buf[..n]);
        }
        v
    });
    let s = wait(child, "plan on a terminal");
    assert_eq!(s.code(), Some(0));
    Some(String::from_utf8_lossy(&reader.join().unwrap()).into_owned())
}

#[test]
fn warnings_are_coloured_on_a_terminal_unless_no_color() {
    let ws = workspace();
    let Some(coloured) = plan_on_a_terminal(ws.path(), None) else {
        skip("warnings_are_coloured_on_a_terminal_unless_no_color", "no pseudo-terminal here");
        return;
    };
    assert!(coloured.contains("no document under"), "{coloured:?}");
    assert!(coloured.contains("\u{1b}["), "colour on a terminal: {coloured:?}");
    let empty = plan_on_a_terminal(ws.path(), Some("")).unwrap();
    assert!(empty.contains("\u{1b}["), "an empty NO_COLOR is unset: {empty:?}");
    let plain = plan_on_a_terminal(ws.path(), Some("1")).unwrap();
    assert!(plain.contains("no document under"), "{plain:?}");
    assert!(!plain.contains('\u{1b}'), "NO_COLOR=1: {plain:?}");
}

// ---------------------------------------------------------------- item 17

/// Section names of an ELF64 little-endian file.
fn elf_sections(bytes: &[u8]) -> Vec<String> {
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!((bytes[4], bytes[5]), (2, 1), "ELF64 little-endian expected");
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(header(shstrndx) + 0x18);
    (0..shnum)
        .map(|i| {
            let start = strtab + u32_at(header(i));
            let end = start + bytes[start..].iter().position(|&b| b == 0).unwrap();
            String::from_utf8_lossy(&bytes[start..end]).into_owned()
        })
        .collect()
}

#[test]
fn the_release_binary_ships_without_debug_info() {
    let manifest: toml::Table = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap().parse().unwrap();
    let release = &manifest["profile"]["release"];
    let debug = release.get("debug");
    assert!(
        matches!(debug, Some(toml::Value::Boolean(false)) | Some(toml::Value::Integer(0)))
            || debug.and_then(|d| d.as_str()) == Some("none"),
        "[profile.release] debug = false: {release}"
    );
    assert!(
        release.get("strip").and_then(|s| s.as_bool()) == Some(true)
            || release.get("strip").and_then(|s| s.as_str()) == Some("symbols"),
        "[profile.release] strip = true: {release}"
    );
    let profiling = &manifest["profile"]["profiling"];
    assert_eq!(profiling["inherits"].as_str(), Some("release"), "a profile with debug info for perf");

    let bin = bin();
    if !bin.components().any(|c| c.as_os_str() == "release") && std::env::var_os("HARDENING_BIN").is_none() {
        let why = format!("{} is not a release build; only Cargo.toml checked", bin.display());
        skip("the_release_binary_ships_without_debug_info (binary part)", &why);
        return;
    }
    let sections = elf_sections(&std::fs::read(&bin).unwrap());
    assert!(sections.iter().any(|s| s == ".text"), "parsed the section table: {sections:?}");
    let debug: Vec<_> = sections.iter().filter(|s| s.starts_with(".debug") || *s == ".symtab").collect();
    assert!(debug.is_empty(), "{} carries {debug:?}", bin.display());
}
