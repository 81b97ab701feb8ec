//! Issue 8 items 9 and 10 for `trivy:db`: hostile advisories (names over
//! bbolt's key limit, ids that would break the row encoding, one document
//! copied under thousands of CVE aliases, names with terminal controls)
//! are rejected like every document that cannot become rows (exit 2
//! naming file and JSON path, `rejected[]` under `--allow-invalid`), and
//! never fail the assembly, exhaust memory or reach stderr raw. Every
//! input is generated here.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

/// bbolt's `MaxKeySize`.
const MAX_KEY: usize = 32768;

/// A workspace with an OSV source `osv` (`adv/`), a Node.js source `node`
/// (`node/`) and one `trivy:db` profile `db` over both.
fn workspace() -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join("adv")).unwrap();
    std::fs::create_dir_all(ws.path().join("node")).unwrap();
    std::fs::write(
        ws.path().join("profiles.toml"),
        "[workspace]\nsource-date-epoch = 1735689600\n\n\
         [sources.osv]\nformat = \"osv\"\npath = \"adv\"\n\n\
         [sources.node]\nformat = \"nodejs-advisory\"\npath = \"node\"\n\n\
         [profiles.db]\nkind = \"trivy:db\"\ninputs = [\"osv\", \"node\"]\n",
    )
    .unwrap();
    write(ws.path(), "adv/GOOD-1.json", &osv("GOOD-1", &[], "requests"));
    write(ws.path(), "node/1.json", &node(json!(1), "good-module", &[]));
    ws
}

fn write(ws: &Path, rel: &str, doc: &Value) {
    let path = ws.join(rel);
    std::fs::write(&path, serde_json::to_vec(doc).unwrap()).unwrap();
    age(&path);
}

/// An OSV advisory: every version of PyPI package `name` below 1.0.
fn osv(id: &str, aliases: &[&str], name: &str) -> Value {
    json!({"id": id, "aliases": aliases, "modified": "2025-01-01T00:00:00Z", "summary": "s",
        "affected": [{"package": {"ecosystem": "PyPI", "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]}]})
}

/// A Node.js security-wg advisory.
fn node(id: Value, module: &str, cves: &[&str]) -> Value {
    json!({"id": id, "module_name": module, "cves": cves, "vulnerable_versions": "<1.0.0",
        "patched_versions": ">=1.0.0", "title": "t", "updated_at": "2025-01-01"})
}

fn manifest(ws: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(ws.join("out/db/manifest.json")).unwrap()).unwrap()
}

/// `(path, reason)` of the manifest's `rejected[]`, sorted.
fn rejected(ws: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = manifest(ws)["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["path"].as_str().unwrap().to_string(), r["reason"].as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

/// `(file, reason)` of each line of the invalid-input error after its first.
fn rejected_reasons(err: &str) -> Vec<(String, String)> {
    err.split("\n  ")
        .skip(1)
        .map(|l| {
            let (f, r) = l.split_once(": ").unwrap_or((l, ""));
            (f.to_string(), r.to_string())
        })
        .collect()
}

/// Checks a failed build names every `(file, JSON path)` on one line of
/// its error, publishes nothing, and that `--allow-invalid` publishes the
/// DB listing exactly those files in `rejected[]`. `--keep-going`: without
/// it the first failing step stops the run, and which other sources' steps
/// finished before it (and so are named) depends on timing.
fn rejected_as_invalid(ws: &Path, expected: &[(&str, &str)]) {
    let r = run(ws, &["build", "--json", "--keep-going"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    let err = r.json()["error"].as_str().unwrap().to_string();
    for (file, at) in expected {
        assert!(err.lines().any(|l| l.contains(file) && l.contains(at)), "{file}: {at} not in:\n{err}");
    }
    assert!(err.len() < 4096, "a huge name makes a huge message ({} bytes)", err.len());
    for (_, reason) in rejected_reasons(&err) {
        assert!(!reason.contains(|c: char| c.is_control()), "raw control character in {reason:?}");
    }
    assert!(!ws.join("out/db").exists(), "nothing published on invalid input");
    let r = build_ok(ws, &["--allow-invalid"]);
    assert_eq!(r["profiles"]["db"]["status"], "published", "{r}");
    let listed: Vec<String> = rejected(ws).into_iter().map(|(p, _)| p).collect();
    let mut want: Vec<String> = expected.iter().map(|(f, _)| f.to_string()).collect();
    want.sort();
    want.dedup();
    assert_eq!(listed, want);
    assert!(ws.join("out/db/db.tar.gz").is_file());
}

/// Item 9: an id, a CVE alias or a package name over bbolt's 32 KiB key
/// limit, in OSV and Node.js advisories; a key of exactly 32 KiB is fine.
#[test]
fn names_over_the_db_key_limit_are_rejected_naming_file_and_json_path() {
    let ws = workspace();
    let huge = "x".repeat(MAX_KEY + 1);
    let cve = format!("CVE-{huge}");
    write(ws.path(), "adv/big-id.json", &osv(&huge, &[], "requests"));
    write(ws.path(), "adv/big-alias.json", &osv("BIG-ALIAS-1", &["GHSA-1", &cve], "requests"));
    write(ws.path(), "adv/big-name.json", &osv("BIG-NAME-1", &[], &huge));
    write(ws.path(), "node/2.json", &node(json!(2), &huge, &[]));
    write(ws.path(), "node/3.json", &node(json!(3), "m", &[&cve]));
    // exactly at the limit: a DB key bbolt takes
    let edge = "y".repeat(MAX_KEY);
    write(ws.path(), "adv/edge.json", &osv(&edge, &[], &edge));
    rejected_as_invalid(
        ws.path(),
        &[
            ("adv/big-id.json", "$.id"),
            ("adv/big-alias.json", "$.aliases[1]"),
            ("adv/big-name.json", "$.affected[0].package.name"),
            ("node/2.json", "$.module_name"),
            ("node/3.json", "$.cves[0]"),
        ],
    );
    // the DB holds the good advisories and the one at the limit
    let m = manifest(ws.path());
    let db = m["contents"].as_array().unwrap().iter().find(|c| c["path"] == "trivy.db").unwrap();
    // GOOD-1, the Node.js advisory and the edge one: one advisory row each
    assert_eq!(db["records"], 3, "{m}");
}

/// Item 9, same class: an empty id (an empty bbolt key) and ids with a
/// tab or newline, which would break the row encoding between the shard
/// and the assembly (a tab even wrote a corrupt value into the DB, exit 0).
/// (Node.js advisory ids are numbers, checked when parsed.)
#[test]
fn ids_that_would_break_the_row_encoding_are_rejected() {
    let ws = workspace();
    write(ws.path(), "adv/empty-id.json", &osv("", &[], "requests"));
    write(ws.path(), "adv/tab-id.json", &osv("TAB\tID", &["CVE-2025-1"], "requests"));
    write(ws.path(), "adv/newline-id.json", &osv("NL\nID", &["CVE-2025-2"], "flask"));
    rejected_as_invalid(
        ws.path(),
        &[("adv/empty-id.json", "$.id"), ("adv/tab-id.json", "$.id"), ("adv/newline-id.json", "$.id")],
    );
}

/// Same class, values: one 1 MiB advisory filed under 3,000 CVE aliases
/// asked for ~3 GB of rows (one copy of its details per alias) before
/// anything was checked. Its rows are now counted before they are copied:
/// the document is rejected, and the build stays small.
#[test]
fn one_document_cannot_flood_the_db_with_copies_of_its_rows() {
    let ws = workspace();
    let aliases: Vec<String> = (0..3000).map(|i| format!("CVE-2025-{i:05}")).collect();
    let refs: Vec<&str> = aliases.iter().map(String::as_str).collect();
    let mut doc = osv("FLOOD-1", &refs, "requests");
    doc["details"] = json!("d".repeat(1 << 20));
    write(ws.path(), "adv/flood.json", &doc);
    // at most 2 GiB of address space, so a regression fails instead of taking the machine
    let mut c = cmd(ws.path());
    c.args(["build", "--json"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let Measured { run: r, peak_rss_kib: peak_kib, .. } = run_measured(c, Some(2 << 30), None);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    let err = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        err.lines().any(|l| l.contains("adv/flood.json") && l.contains("DB rows would take more than")),
        "{err}"
    );
    assert!(peak_kib < 512 * 1024, "peak RSS {peak_kib} KiB");
    let r = build_ok(ws.path(), &["--allow-invalid"]);
    assert_eq!(r["profiles"]["db"]["rejected"], 1, "{r}");
    assert_eq!(rejected(ws.path())[0].0, "adv/flood.json");
}

/// Item 10: the advisory id in the "left out" warning of a junk explicit
/// version is escaped (a bidi override or an escape never reaches stderr raw).
#[test]
fn the_advisory_id_in_warnings_is_escaped() {
    let ws = workspace();
    let id = "WARN-\u{202e}1";
    let doc = json!({"id": id, "modified": "2025-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}],
            "versions": ["0.5", "trunk\u{1b}[31m"]}]});
    write(ws.path(), "adv/warn.json", &doc);
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("left out"), "no warning:\n{}", r.stderr);
    assert!(!r.stderr.contains('\u{202e}'), "raw bidi override on stderr:\n{}", r.stderr);
    assert!(r.stderr.contains("WARN-\\u{202e}1"), "{}", r.stderr);
    let raw_escapes = r.stderr.matches("\u{1b}[31m").count();
    assert_eq!(raw_escapes, 0, "raw terminal escape from the input on stderr:\n{}", r.stderr);
}

/// Item 2 for `trivy:db`: a shard of large advisories (three of 50 MiB, each
/// under the document limit, under three CVEs) is converted one record at
/// a time within memory, and the document that would push the shard's rows
/// past 128 MiB is rejected naming the source, not held.
#[test]
fn a_shard_of_large_advisories_stays_within_memory() {
    let ws = workspace();
    std::fs::write(
        ws.path().join("profiles.toml"),
        "[workspace]\nsource-date-epoch = 1735689600\n\n\
         [sources.osv]\nformat = \"osv\"\npath = \"adv\"\nshards = 1\n\n\
         [profiles.db]\nkind = \"trivy:db\"\ninputs = [\"osv\"]\n",
    )
    .unwrap();
    for i in 0..3 {
        let mut doc = osv(&format!("BIG-{i}"), &[&format!("CVE-2025-{i:05}")], &format!("pkg{i}"));
        doc["details"] = json!("d".repeat(50 << 20));
        write(ws.path(), &format!("adv/big{i}.json"), &doc);
    }
    let measured = |extra: &[&str]| {
        let mut c = cmd(ws.path());
        c.args(["build", "--json"]).args(extra);
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        run_measured(c, Some(2 << 30), None)
    };
    let Measured { run: r, peak_rss_kib, .. } = measured(&[]);
    eprintln!("3 x 50 MiB advisories, one shard: exit {}, peak RSS {} MiB", r.code, peak_rss_kib / 1024);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    let err = r.json()["error"].as_str().unwrap().to_string();
    assert!(err.contains("adv/big2.json") && err.contains("give source osv more shards"), "{err}");
    assert!(peak_rss_kib < 512 * 1024, "peak RSS {peak_rss_kib} KiB");
    let Measured { run: r, peak_rss_kib, .. } = measured(&["--allow-invalid"]);
    eprintln!("--allow-invalid: exit {}, peak RSS {} MiB", r.code, peak_rss_kib / 1024);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(peak_rss_kib < 512 * 1024, "peak RSS {peak_rss_kib} KiB");
    assert_eq!(rejected(ws.path()).len(), 1);
}
