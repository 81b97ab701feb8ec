//! Hostile sources (issue 8, items 2, 4, 5, 7, 8, 10): special files,
//! deep folders, archives made by GNU tar, corrupt archives, hostile
//! member names and memory bombs. Every input is generated here, at test
//! time; memory is measured as the child's peak RSS (wait4 rusage).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn osv(id: &str) -> String {
    format!(r#"{{"id":"{id}","modified":"2024-01-01T00:00:00Z","summary":"s"}}"#)
}

/// A workspace whose one source `src` is `data/<name>` (created by the caller).
fn workspace(name: &str, extra_source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("profiles.toml"),
        format!(
            "[workspace]\nsource-date-epoch = 1735689600\n\n[sources.src]\nformat = \"osv\"\npath = \"data/{name}\"\n\
             {extra_source}\n[profiles.p]\nkind = \"json:raw\"\ninputs = [\"src\"]\n"
        ),
    )
    .unwrap();
    dir
}

struct Outcome {
    run: Run,
    /// Peak resident set of the child, bytes.
    peak_rss: u64,
}

const MIB: u64 = 1 << 20;
/// The issue's bound on any build's peak RSS.
const RSS_BOUND: u64 = 512 * MIB;

/// Run `build` with a watchdog (a hang is the bug: kill after `limit`) and
/// measure the child's peak RSS.
fn build_watched(ws: &Path, limit: Duration) -> Outcome {
    build_args(ws, &[], limit)
}

fn build_args(ws: &Path, extra: &[&str], limit: Duration) -> Outcome {
    let mut c = cmd(ws);
    c.arg("build").args(extra).stdout(Stdio::piped()).stderr(Stdio::piped());
    let m = run_measured(c, None, Some(limit));
    assert!(!m.timed_out, "build hung: killed after {limit:?}; stderr: {}", m.run.stderr);
    let code = m.signal.map_or(m.run.code, |s| -s);
    Outcome { run: Run { code, ..m.run }, peak_rss: m.peak_rss_kib as u64 * 1024 }
}

fn build(ws: &Path) -> Run {
    build_watched(ws, Duration::from_secs(300)).run
}

fn assert_exit2(r: &Run, needles: &[&str]) {
    assert_eq!(r.code, 2, "exit 2 expected; stderr:\n{}", r.stderr);
    for n in needles {
        assert!(r.stderr.contains(n), "message names {n:?}:\n{}", r.stderr);
    }
}

fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn zst(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

// ------------------------------------------------------------- item 4

#[test]
fn archive_path_that_is_not_a_regular_file_is_refused_not_read() {
    // a symbolic link to /dev/zero: used to spin forever
    let ws = workspace("src.tar", "");
    std::os::unix::fs::symlink("/dev/zero", ws.path().join("data/src.tar")).unwrap();
    let r = build_watched(ws.path(), Duration::from_secs(60)).run;
    assert_exit2(&r, &["data/src.tar", "not a regular file"]);

    // a FIFO: used to block in open()
    let ws = workspace("f.tar", "");
    let st = Command::new("mkfifo").arg(ws.path().join("data/f.tar")).status().unwrap();
    assert!(st.success());
    let r = build_watched(ws.path(), Duration::from_secs(60)).run;
    assert_exit2(&r, &["data/f.tar", "not a regular file"]);

    // the source path itself may be a link to a regular archive
    let ws = workspace("link.tar", "");
    std::fs::write(ws.path().join("data/real.tar"), tar_of(&[("a.json", osv("A-1").as_bytes())])).unwrap();
    age(&ws.path().join("data/real.tar"));
    std::os::unix::fs::symlink("real.tar", ws.path().join("data/link.tar")).unwrap();
    let r = build(ws.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
}

// ------------------------------------------------------------- item 5

#[test]
fn folder_nested_1300_levels_is_walked_without_overflowing() {
    let ws = workspace("deep", "");
    let mut p = ws.path().join("data/deep");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("top.json"), osv("TOP-1")).unwrap();
    for _ in 0..1300 {
        p.push("d");
    }
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("deep.json"), osv("DEEP-1")).unwrap();
    let r = build(ws.path());
    assert!(r.code == 0 || r.code == 2, "exit 0 or 2, not a crash: {}\n{}", r.code, r.stderr);
    if r.code == 0 {
        let raw = std::fs::read_dir(ws.path().join("out/p")).unwrap().count();
        assert!(raw > 0);
    } else {
        assert!(r.stderr.contains("data/deep"), "{}", r.stderr);
    }
}

// ------------------------------------------------------------- item 7

#[test]
fn archive_made_by_tar_c_dot_is_accepted() {
    let ws = workspace("src.tar.zst", "");
    let d = ws.path().join("d");
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(d.join("a.json"), osv("A-1")).unwrap();
    std::fs::write(d.join("sub/b.json"), osv("B-1")).unwrap();
    let tar = Command::new("tar").arg("-C").arg(&d).args(["-cf", "-", "."]).output().unwrap();
    assert!(tar.status.success());
    assert!(tar.stdout.windows(3).any(|w| w == b"./\0"), "archive holds a ./ entry");
    std::fs::write(ws.path().join("data/src.tar.zst"), zst(&tar.stdout)).unwrap();
    age(&ws.path().join("data/src.tar.zst"));
    let r = build(ws.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
}

// ------------------------------------------------------------- item 8

fn corrupt_case(name: &str, bytes: &[u8], needles: &[&str]) {
    let ws = workspace(name, "");
    std::fs::write(ws.path().join("data").join(name), bytes).unwrap();
    age(&ws.path().join("data").join(name));
    let r = build(ws.path());
    let mut all = vec![name];
    all.extend_from_slice(needles);
    assert_exit2(&r, &all);
    // one error line (no raw archive bytes spilling over lines); the build
    // summary (each profile's status, the step counts) comes before it
    let summary = |l: &str| l.starts_with("p: not-published ") || l.starts_with("steps: ");
    let other: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty() && !summary(l)).collect();
    assert_eq!(other.len(), 1, "one error line:\n{}", r.stderr);
    assert!(other[0].starts_with("error: "), "{}", r.stderr);
}

fn set_checksum(header: &mut [u8]) {
    let sum: u32 = header[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| if (148..156).contains(&i) { 32 } else { *b as u32 })
        .sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

#[test]
fn corrupt_archives_are_invalid_input_not_retryable() {
    let good = tar_of(&[
        ("a.json", osv("A-1").as_bytes()),
        ("b.json", osv("B-1").as_bytes()),
        ("c.json", &vec![b' '; 200_000]),
    ]);
    let good_zst = zst(&good);
    // truncated, in the compressed stream and in the tar itself
    corrupt_case("t.tar.zst", &good_zst[..good_zst.len() / 2], &["zstd"]);
    corrupt_case("t.tar", &good[..good.len() - 100_000], &["member"]);
    corrupt_case("h.tar", &good[..700], &["truncated"]);
    // empty compressed files, garbage, wrong compression
    corrupt_case("e.tar.gz", b"", &[]);
    corrupt_case("e.tar.zst", b"", &[]);
    corrupt_case("g.tar", &[0x5a; 4096], &["corrupt tar header"]);
    corrupt_case("g.tar.gz", &good_zst, &["gzip"]);
    corrupt_case("g.tar.zst", &good, &["zstd"]);
    // a GNU sparse member, made by GNU tar, and a malformed sparse header
    let d = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(d.path().join("s.json")).unwrap();
    f.set_len(2 << 20).unwrap();
    drop(f);
    let out = Command::new("tar")
        .arg("-C")
        .arg(d.path())
        .args(["--sparse", "--format=gnu", "-cf", "-", "s.json"])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout[156] == b'S', "GNU tar made a sparse member");
    corrupt_case("s.tar", &out.stdout, &["member s.json", "sparse"]);
    let mut sparse = tar_of(&[("s.json", osv("S-1").as_bytes())]);
    sparse[156] = b'S';
    set_checksum(&mut sparse);
    corrupt_case("s2.tar", &sparse, &["first header", "corrupt tar header"]);
    // a header that understates its size: the next "header" is data whose
    // bytes must not reach stderr
    let payload = format!("{}\nerror: forged line\n{}", osv("U-1"), "x".repeat(1500));
    let mut under = tar_of(&[("u.json", payload.as_bytes()), ("v.json", osv("V-1").as_bytes())]);
    let size = format!("{:011o}\0", 10);
    under[124..136].copy_from_slice(size.as_bytes());
    set_checksum(&mut under);
    corrupt_case("u.tar", &under, &["u.json"]);
}

// ------------------------------------------------------------- item 10

#[test]
fn hostile_names_are_escaped_in_source_errors() {
    let hostile = "x\nerror: none\u{1b}[31m.json";
    // an archive member (a link, refused)
    let ws = workspace("h.tar", "");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, hostile, "target").unwrap();
    std::fs::write(ws.path().join("data/h.tar"), b.into_inner().unwrap()).unwrap();
    let r = build(ws.path());
    assert_exit2(&r, &["x\\nerror: none\\u{1b}[31m.json", "link members are refused"]);
    assert!(!r.stderr.contains('\u{1b}') && !r.stderr.contains("\nerror: none"), "{}", r.stderr);

    // a file in a folder source (a FIFO, refused)
    let ws = workspace("dir", "");
    std::fs::create_dir_all(ws.path().join("data/dir")).unwrap();
    let st = Command::new("mkfifo").arg(ws.path().join("data/dir").join(hostile)).status().unwrap();
    assert!(st.success());
    let r = build_watched(ws.path(), Duration::from_secs(60)).run;
    assert_exit2(&r, &["x\\nerror: none\\u{1b}[31m.json", "special file"]);
    assert!(!r.stderr.contains('\u{1b}') && !r.stderr.contains("\nerror: none"), "{}", r.stderr);
}

// ------------------------------------------------------------- item 2

fn assert_bounded(o: &Outcome, what: &str) {
    eprintln!("{what}: exit {}, peak RSS {} MiB", o.run.code, o.peak_rss / MIB);
    assert!(o.peak_rss <= RSS_BOUND, "{what}: peak RSS {} MiB over 512 MiB", o.peak_rss / MIB);
}

#[test]
fn folder_document_over_the_limit_is_refused_before_reading() {
    let ws = workspace("dir", "");
    let dir = ws.path().join("data/dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ok.json"), osv("OK-1")).unwrap();
    // 100 MiB by its size (sparse: costs no disk)
    std::fs::File::create(dir.join("big.json")).unwrap().set_len(100 * MIB).unwrap();
    let o = build_args(ws.path(), &[], Duration::from_secs(300));
    assert_exit2(&o.run, &["big.json", "over the 67108864-byte limit (max-document-bytes)"]);
    assert_bounded(&o, "100 MiB file");
    assert!(o.peak_rss < 100 * MIB, "refused without reading it");
}

#[test]
fn limits_are_configurable_per_source() {
    let ws = workspace("dir", "max-document-bytes = 1000\n");
    std::fs::create_dir_all(ws.path().join("data/dir")).unwrap();
    let long =
        format!(r#"{{"id":"L-1","modified":"2024-01-01T00:00:00Z","summary":"{}"}}"#, "s".repeat(2000));
    std::fs::write(ws.path().join("data/dir/l.json"), long).unwrap();
    assert_exit2(&build(ws.path()), &["l.json", "over the 1000-byte limit (max-document-bytes)"]);

    let ws = workspace("a.tar", "max-archive-bytes = 10000\n");
    let members: Vec<(String, String)> =
        (0..20).map(|i| (format!("m{i}.json"), osv(&format!("M-{i}")))).collect();
    let refs: Vec<(&str, &[u8])> = members.iter().map(|(p, d)| (p.as_str(), d.as_bytes())).collect();
    std::fs::write(ws.path().join("data/a.tar"), tar_of(&refs)).unwrap();
    assert_exit2(&build(ws.path()), &["a.tar", "expands to more than 10000 bytes (max-archive-bytes)"]);

    let ws = workspace("dir", "max-document-bytes = 0\n");
    let r = build(ws.path());
    assert_exit2(&r, &["max-document-bytes"]);
}

/// A `.tar.zst` of `n` members of `size` bytes each (valid OSV documents,
/// one long string each), streamed to disk: a few KB that expand to n×size.
fn compressible_archive(path: &Path, n: usize, size: u64) {
    let file = std::fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(zstd::stream::write::Encoder::new(file, 3).unwrap().auto_finish());
    for i in 0..n {
        let head = format!(r#"{{"id":"BIG-{i}","modified":"2024-01-01T00:00:00Z","details":""#);
        let tail = "\"}";
        let fill = size - head.len() as u64 - tail.len() as u64;
        let data = std::io::Read::chain(
            std::io::Read::chain(head.as_bytes(), std::io::Read::take(std::io::repeat(b'a'), fill)),
            tail.as_bytes(),
        );
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("big/{i}.json"), data).unwrap();
    }
    b.into_inner().unwrap();
    age(path);
}

#[test]
fn archive_of_large_compressible_members_builds_within_memory() {
    let ws = workspace("bomb.tar.zst", "");
    compressible_archive(&ws.path().join("data/bomb.tar.zst"), 6, 60 * MIB);
    let size = std::fs::metadata(ws.path().join("data/bomb.tar.zst")).unwrap().len();
    assert!(size < 1 << 20, "a small archive ({size} bytes)");
    let o = build_args(ws.path(), &["--jobs", "4"], Duration::from_secs(1200));
    assert_eq!(o.run.code, 0, "{}", o.run.stderr);
    assert_bounded(&o, "6 x 60 MiB members");

    // over the default document limit: refused by its header size
    let ws = workspace("bomb.tar.zst", "");
    compressible_archive(&ws.path().join("data/bomb.tar.zst"), 2, 65 * MIB);
    let o = build_args(ws.path(), &[], Duration::from_secs(600));
    assert_exit2(&o.run, &["bomb.tar.zst", "member big/0.json", "max-document-bytes"]);
    assert_bounded(&o, "65 MiB member");
}

fn zeros_doc(path: &Path, values: u64) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    use std::io::Write;
    w.write_all(br#"{"id":"Z-1","modified":"2024-01-01T00:00:00Z","database_specific":{"x":[0"#).unwrap();
    for _ in 1..values {
        w.write_all(b",0").unwrap();
    }
    w.write_all(b"]}}").unwrap();
    w.flush().unwrap();
    drop(w);
    age(path);
}

#[test]
fn amplifying_json_is_rejected_or_parsed_within_memory() {
    // 63 MiB of `0,`: ~33 M values, GBs as parsed JSON
    let ws = workspace("dir", "");
    std::fs::create_dir_all(ws.path().join("data/dir")).unwrap();
    zeros_doc(&ws.path().join("data/dir/zeros.json"), 33_000_000);
    let o = build_args(ws.path(), &["--jobs", "4"], Duration::from_secs(600));
    assert_exit2(&o.run, &["zeros.json", "too large to parse"]);
    assert_bounded(&o, "63 MiB of zeros");

    // just under the parse budget, four such documents with --jobs 4
    let ws = workspace("dir", "shards = 4\n");
    std::fs::create_dir_all(ws.path().join("data/dir")).unwrap();
    for i in 0..4 {
        zeros_doc(&ws.path().join(format!("data/dir/z{i}.json")), 1_900_000);
    }
    let o = build_args(ws.path(), &["--jobs", "4"], Duration::from_secs(600));
    assert_eq!(o.run.code, 0, "{}", o.run.stderr);
    assert_bounded(&o, "4 docs of 1.9 M values");
}
