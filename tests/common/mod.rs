//! Shared helpers of the integration tests: temporary workspaces, running
//! the real binary, reading exports.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_export-center");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in walkdir::WalkDir::new(from).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(from).unwrap();
        let dest = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
            age(&dest);
        }
    }
}

/// Set a file's mtime 5 s back, as if checked out a while ago: the stat
/// cache re-reads files modified within 2 s of a listing ("racily clean").
pub fn age(path: &Path) {
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(past).unwrap();
}

/// A test-only fixture key of `tests/fixtures/keys/`.
pub fn fixture_key(name: &str) -> PathBuf {
    repo().join("tests/fixtures/keys").join(name)
}

/// Copy a fixture private key into `ws/keys/` with mode 0600 (git keeps no modes).
pub fn install_key(ws: &Path, fixture: &str, as_name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(ws.join("keys")).unwrap();
    let dest = ws.join("keys").join(as_name);
    std::fs::copy(fixture_key(fixture), &dest).unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
    dest
}

/// A temporary copy of the repository's default workspace (profiles.toml + samples/).
pub fn sample_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo().join("profiles.toml"), dir.path().join("profiles.toml")).unwrap();
    copy_dir(&repo().join("samples"), &dir.path().join("samples"));
    dir
}

/// A workspace with a single osv source at `src` (copied to `data/` inside) and one profile `p`.
pub fn one_source_workspace(src: &Path, extra_profile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let name = src.file_name().unwrap().to_string_lossy().to_string();
    if src.is_dir() {
        copy_dir(src, &dir.path().join("data").join(&name));
    } else {
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::copy(src, dir.path().join("data").join(&name)).unwrap();
        age(&dir.path().join("data").join(&name));
    }
    std::fs::write(
        dir.path().join("profiles.toml"),
        format!(
            "[workspace]\nsource-date-epoch = 1735689600\n\n[sources.src]\nformat = \"osv\"\npath = \"data/{name}\"\n\n\
             [profiles.p]\nkind = \"json:raw\"\ninputs = [\"src\"]\n{extra_profile}"
        ),
    )
    .unwrap();
    dir
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

pub fn finish(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

pub fn cmd(ws: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("-C").arg(ws).env_remove("SOURCE_DATE_EPOCH").env_remove("EXPORT_CENTER_CRASH_AT");
    c
}

pub fn run(ws: &Path, args: &[&str]) -> Run {
    finish(cmd(ws).args(args).output().unwrap())
}

/// `build --json` that must succeed.
pub fn build_ok(ws: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["build", "--json"];
    args.extend_from_slice(extra);
    let r = run(ws, &args);
    assert_eq!(r.code, 0, "build failed:\n{}\n{}", r.stdout, r.stderr);
    r.json()
}

/// Every file under `out/` with its bytes, for byte-for-byte comparison.
pub fn out_files(ws: &Path) -> Vec<(String, Vec<u8>)> {
    let out = ws.join("out");
    let mut v = Vec::new();
    let visible = |e: &walkdir::DirEntry| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.');
    for e in walkdir::WalkDir::new(&out).sort_by_file_name().into_iter().filter_entry(visible) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            v.push((
                e.path().strip_prefix(&out).unwrap().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    v
}

/// Steps of a build report with status "executed": id → reason object.
pub fn executed(report: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    report["stepLog"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "executed")
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["reason"].clone()))
        .collect()
}

pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// A run of the binary reaped with `wait4`, with its resource usage.
pub struct Measured {
    /// `code` is the exit status, -1 when killed by a signal.
    pub run: Run,
    /// The signal that ended the child, if one did.
    pub signal: Option<i32>,
    /// Peak resident set of the child, KiB (`ru_maxrss`).
    pub peak_rss_kib: i64,
    /// The watchdog fired: the child was killed with SIGKILL.
    pub timed_out: bool,
}

/// Spawn `c` (configured by the caller: arguments, stdio) with at most
/// `address_space` bytes of address space (`RLIMIT_AS`, when given), so a
/// regression fails instead of taking the machine; drain its piped
/// stdout/stderr on threads; kill it after `watchdog` (when given); reap it
/// with `wait4` (not `Child::wait`) for its peak RSS.
#[allow(clippy::zombie_processes)] // reaped below with wait4
pub fn run_measured(
    mut c: Command,
    address_space: Option<u64>,
    watchdog: Option<std::time::Duration>,
) -> Measured {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    if let Some(bytes) = address_space {
        unsafe {
            c.pre_exec(move || {
                let lim = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = c.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    match watchdog {
        None => {
            let got = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            assert_eq!(got, pid, "wait4 failed");
        }
        Some(limit) => {
            let deadline = std::time::Instant::now() + limit;
            loop {
                let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
                if r == pid {
                    break;
                }
                assert_eq!(r, 0, "wait4 failed");
                if std::time::Instant::now() > deadline && !timed_out {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    timed_out = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    Measured {
        run: Run { code, stdout: out.join().unwrap(), stderr: err.join().unwrap() },
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        peak_rss_kib: ru.ru_maxrss,
        timed_out,
    }
}

/// Print the one skip line format, `SKIP: <what>: <why>`, on stdout;
/// scripts/test.sh counts these lines in its summary.
pub fn skip(what: &str, why: &str) {
    println!("SKIP: {what}: {why}");
}

/// The real corpus: `EXPORT_CENTER_CORPUS`, else `../shared/data` beside
/// the repository. `None` (after a SKIP line) when it is not there,
/// unless `EXPORT_CENTER_REQUIRE_CORPUS=1` (set by `.ci/run` in CI): then
/// a missing corpus fails the test.
pub fn corpus(test: &str) -> Option<PathBuf> {
    let data = std::env::var_os("EXPORT_CENTER_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    if data.join("osv/go-vulndb.tar.zst").is_file() {
        return Some(data);
    }
    let why = format!("no corpus at {} (set EXPORT_CENTER_CORPUS)", data.display());
    assert!(
        std::env::var("EXPORT_CENTER_REQUIRE_CORPUS").as_deref() != Ok("1"),
        "EXPORT_CENTER_REQUIRE_CORPUS=1 but {why}"
    );
    skip(test, &why);
    None
}

/// The Go bbolt checker (`scripts/bbolt-check`, go.etcd.io/bbolt), built
/// once per test binary; `Err` says what is missing.
pub fn bbolt_checker() -> &'static Result<PathBuf, String> {
    static CHECKER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CHECKER.get_or_init(|| {
        let gopath =
            std::env::var("EXPORT_CENTER_BBOLT_GOPATH").unwrap_or_else(|_| "/usr/share/gocode".into());
        let install = "apt-get install golang-go golang-github-coreos-bbolt-dev golang-golang-x-sys-dev";
        if Command::new("go").arg("version").output().map(|o| !o.status.success()).unwrap_or(true) {
            return Err(format!("no Go toolchain: `go` is not on PATH ({install})"));
        }
        for dir in ["go.etcd.io/bbolt", "golang.org/x/sys/unix"] {
            let src = Path::new(&gopath).join("src").join(dir);
            if !src.is_dir() {
                return Err(format!("no {} (set EXPORT_CENTER_BBOLT_GOPATH, or {install})", src.display()));
            }
        }
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let bin = tmp.join("bbolt-check");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bbolt-check/main.go");
        let out = Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(&source)
            .env("GOPATH", &gopath)
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .env("GOCACHE", tmp.join("go-build-cache"))
            .output()
            .expect("run go build");
        assert!(
            out.status.success(),
            "go build of {} failed (GOPATH={gopath}):\n{}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(bin)
    })
}

/// A verifier at `$var` (or `fallback`), or `None` after a SKIP line
/// (a failure under EXPORT_CENTER_REQUIRE_VERIFIERS=1).
pub fn tool(var: &str, fallback: Option<&str>, what: &str) -> Option<PathBuf> {
    let found = std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| fallback.map(PathBuf::from))
        .filter(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("EXPORT_CENTER_REQUIRE_VERIFIERS").as_deref() != Ok("1"),
            "EXPORT_CENTER_REQUIRE_VERIFIERS=1 but {what} is missing (scripts/test-deps.sh failed?)"
        );
        skip(what, &format!("not installed (set {var}, or run scripts/test.sh which installs it)"));
    }
    found
}

/// A registry on 127.0.0.1 that is stopped when dropped.
pub struct Registry {
    pub child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_registry(bin: &Path) -> Registry {
    start_registry_with(bin, "")
}

/// A registry whose config also holds `extra` (YAML top-level sections, e.g. `auth:`).
pub fn start_registry_with(bin: &Path, extra: &str) -> Registry {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let reg = Registry { child, port, _dir: dir };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return reg;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("docker-registry did not start on 127.0.0.1:{port}"); // dropping reg stops it
}
