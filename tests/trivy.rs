//! `trivy:db` and `trivy:java-db` against the real Trivy 0.76.0 scanner
//! (installed by `scripts/test-deps.sh`), offline, directly from our files
//! and through a real OCI registry (`docker-registry` on 127.0.0.1).
//!
//! The fixture workspace `tests/fixtures/trivy/` holds self-authored
//! advisories for every ecosystem, a Maven repository and projects; each
//! `projects/<name>/expected.json` lists exactly what Trivy must report
//! (vulnerability id, package, installed and fixed version, severity), and
//! nothing for the safe versions beside them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn fixture() -> PathBuf {
    repo().join("tests/fixtures/trivy")
}

/// A tool from the environment, or `None` with a SKIP line (a failure
/// when `EXPORT_CENTER_REQUIRE_VERIFIERS=1`, as in CI).
fn trivy() -> Option<PathBuf> {
    tool("EXPORT_CENTER_TRIVY", None, "Trivy 0.76.0")
}

/// The fixture workspace copied and built; returns it.
fn built_fixture() -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), ws.path());
    build_ok(ws.path(), &[]);
    ws
}

fn untar_gz(archive: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let f = std::fs::File::open(archive).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(f)).unpack(dest).unwrap();
}

/// A Trivy cache folder holding our DBs, as `--cache-dir` expects.
fn cache_with_dbs(ws: &Path) -> PathBuf {
    let cache = ws.join("trivy-cache");
    untar_gz(&ws.join("out/trivy-db/db.tar.gz"), &cache.join("db"));
    untar_gz(&ws.join("out/trivy-java-db/javadb.tar.gz"), &cache.join("java-db"));
    cache
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Finding {
    id: String,
    pkg: String,
    installed: String,
    fixed: String,
    severity: String,
}

fn findings(report: &serde_json::Value) -> Vec<Finding> {
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let mut out: Vec<Finding> = report["Results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["Vulnerabilities"].as_array().cloned().unwrap_or_default())
        .map(|v| Finding {
            id: s(&v, "VulnerabilityID"),
            pkg: s(&v, "PkgName"),
            installed: s(&v, "InstalledVersion"),
            fixed: s(&v, "FixedVersion"),
            severity: s(&v, "Severity"),
        })
        .collect();
    out.sort();
    out
}

fn expected(project: &Path) -> (String, Vec<Finding>) {
    let e: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join("expected.json")).unwrap()).unwrap();
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let mut list: Vec<Finding> = e["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Finding {
            id: s(v, "id"),
            pkg: s(v, "pkg"),
            installed: s(v, "installed"),
            fixed: s(v, "fixed"),
            severity: s(v, "severity"),
        })
        .collect();
    list.sort();
    (e["scan"].as_str().unwrap().to_string(), list)
}

/// Run Trivy offline on one project; `db_args` say where the DBs come from.
fn scan(trivy: &Path, cache: &Path, mode: &str, target: &Path, db_args: &[&str]) -> Vec<Finding> {
    let out = Command::new(trivy)
        .arg(mode)
        .arg("--cache-dir")
        .arg(cache)
        .args(db_args)
        .args(["--offline-scan", "--skip-version-check", "--disable-telemetry", "--scanners", "vuln"])
        .args(["--format", "json", "--quiet"])
        .arg(target)
        .env("TRIVY_NO_PROGRESS", "true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trivy {mode} {} failed:\n{}",
        target.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    findings(&serde_json::from_slice(&out.stdout).unwrap())
}

fn projects() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture().join("projects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    v.sort();
    v
}

const OFFLINE: &[&str] = &["--skip-db-update", "--skip-java-db-update"];

#[test]
fn trivy_reports_exactly_what_the_advisories_say_for_every_project() {
    let ws = built_fixture();
    let out = ws.path().join("out");
    for p in ["trivy-db", "trivy-java-db"] {
        let r = run(ws.path(), &["verify", out.join(p).to_str().unwrap()]);
        assert_eq!(r.code, 0, "verify {p}:\n{}", r.stdout);
    }
    let Some(trivy) = trivy() else { return };
    let cache = cache_with_dbs(ws.path());
    let projects = projects();
    assert!(projects.len() >= 6, "fixture projects: {projects:?}");
    for project in projects {
        let name = project.file_name().unwrap().to_string_lossy().to_string();
        let (mode, want) = expected(&project);
        let got = scan(&trivy, &cache, &mode, &ws.path().join("projects").join(&name).join("root"), OFFLINE);
        assert_eq!(got, want, "project {name}: Trivy's findings differ from expected.json");
        eprintln!("trivy {mode} {name}: {} finding(s) as expected", got.len());
    }
}

#[test]
fn db_builds_are_byte_identical_and_metadata_is_pinned() {
    let a = built_fixture();
    let b = built_fixture();
    let files_a = out_files(a.path());
    assert!(files_a.iter().any(|(n, _)| n == "trivy-db/db.tar.gz"));
    assert!(files_a.iter().any(|(n, _)| n == "trivy-java-db/javadb.tar.gz"));
    assert!(files_a == out_files(b.path()), "two builds of the same inputs differ");
    // two sources (Alpine OSV and secdb) write `alpine 3.18`: the manifest says whose data source it shows
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.path().join("out/trivy-db/manifest.json")).unwrap()).unwrap();
    let shared: Vec<&serde_json::Value> = m["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["path"].as_str().unwrap_or_default().starts_with("trivy.db data-source/"))
        .collect();
    assert_eq!(shared.len(), 1, "{:?}", m["warnings"]);
    assert_eq!(shared[0]["path"], "trivy.db data-source/alpine 3.18");
    assert!(shared[0]["message"].as_str().unwrap().contains("sources alpine and secdb"), "{}", shared[0]);
    let dir = tempfile::tempdir().unwrap();
    untar_gz(&a.path().join("out/trivy-db/db.tar.gz"), dir.path());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["Version"], 2);
    assert_eq!(meta["UpdatedAt"], "2025-01-01T00:00:00Z");
    assert_eq!(meta["NextUpdate"], "2025-01-02T00:00:00Z");
    untar_gz(&a.path().join("out/trivy-java-db/javadb.tar.gz"), dir.path());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["Version"], 1);
    // the Java DB schema and a 20-byte SHA-1 for the indexed jar (not the -sources.jar)
    let conn = rusqlite::Connection::open(dir.path().join("trivy-java.db")).unwrap();
    let rows: Vec<(String, String, String, Vec<u8>, String)> = conn
        .prepare("SELECT a.group_id, a.artifact_id, i.version, i.sha1, i.archive_type FROM indices i JOIN artifacts a ON a.id = i.artifact_id ORDER BY 1, 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str(), rows[0].2.as_str()),
        ("com.example.widgets", "widget-core", "1.2.0")
    );
    use sha1::Digest as _;
    let jar = std::fs::read(
        fixture().join("maven-repo/com/example/widgets/widget-core/1.2.0/widget-core-1.2.0.jar"),
    )
    .unwrap();
    assert_eq!(rows[0].3, sha1::Sha1::digest(&jar).to_vec());
    assert_eq!(rows[0].4, "jar");
}

#[test]
fn one_changed_advisory_reruns_its_shard_and_the_assembly_only() {
    let ws = built_fixture();
    let file = ws.path().join("advisories/pypi/EXAMPLE-PYPI-2025-0002.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    v["summary"] = "edited".into();
    std::fs::write(&file, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let r = build_ok(ws.path(), &[]);
    let mut ran: Vec<String> = executed(&r).into_iter().map(|(id, _)| id).collect();
    ran.sort();
    assert_eq!(ran, vec!["convert:trivy-db/pypi/0000", "db:trivy-db", "parse:pypi/0000", "seal:trivy-db"]);
}

/// The assembly rewrites one kept scratch file in place (cache/scratch):
/// a smaller DB written over a larger one must come out exactly as in a
/// fresh cache, with nothing of the larger one left in it.
#[test]
fn a_smaller_db_written_over_the_kept_scratch_file_equals_a_fresh_build() {
    let ws = built_fixture();
    let scratch = ws.path().join("cache/scratch/trivy-db.0");
    let before = std::fs::metadata(&scratch).expect("the assembly keeps its scratch file").len();
    let shrink = |root: &Path| {
        let toml = std::fs::read_to_string(root.join("profiles.toml")).unwrap();
        let all = "inputs = [\"pypi\", \"npm\", \"crates\", \"go\", \"maven\", \"rubygems\", \"nuget\", \"packagist\", \"hex\", \"pub\", \"swift\", \"julia\", \"bitnami\", \"k8s\", \"nodejs\", \"ubuntu\", \"debian\", \"alpine\", \"secdb\"]";
        assert!(toml.contains(all), "the fixture's trivy-db inputs changed; update this test");
        std::fs::write(root.join("profiles.toml"), toml.replace(all, "inputs = [\"go\"]")).unwrap();
    };
    shrink(ws.path());
    build_ok(ws.path(), &[]);
    let fresh = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), fresh.path());
    shrink(fresh.path());
    build_ok(fresh.path(), &[]);
    let files = |ws: &Path| -> Vec<(String, Vec<u8>)> {
        out_files(ws).into_iter().filter(|(n, _)| n.starts_with("trivy-db/")).collect()
    };
    assert!(
        files(ws.path()) == files(fresh.path()),
        "the rebuilt trivy-db export differs from a fresh build"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path().join("out/trivy-db/manifest.json")).unwrap())
            .unwrap();
    let db = manifest["contents"].as_array().unwrap().iter().find(|c| c["path"] == "trivy.db").unwrap();
    let after = std::fs::metadata(&scratch).unwrap().len();
    assert_eq!(after, db["bytes"].as_u64().unwrap(), "the scratch file ends where this DB ends");
    assert!(after < before, "the fixture change must shrink the DB ({before} -> {after} bytes)");
    // gc deletes it; the next build writes it again
    let gc = run(ws.path(), &["cache", "gc", "--json"]);
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert!(!scratch.exists(), "cache gc removes scratch files");
}

#[test]
fn bad_advisories_are_named_and_skipped_only_with_allow_invalid() {
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), ws.path());
    let bad = |name: &str, eco: &str, pkg: &str, fixed: &str| {
        let doc = serde_json::json!({"id": name, "modified": "2025-01-01T00:00:00Z", "affected": [
            {"package": {"ecosystem": eco, "name": pkg}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]});
        std::fs::write(
            ws.path().join(format!("advisories/pypi/{name}.json")),
            serde_json::to_vec(&doc).unwrap(),
        )
        .unwrap();
    };
    bad("BAD-ECO-1", "Debian:sid", "openssl", "3.0.1");
    bad("BAD-ECO-2", "Fedora:40", "openssl", "3.0.1");
    bad("BAD-VERSION-1", "PyPI", "somepkg", "1.0 beta");
    bad("BAD-NAME-1", "PyPI", " padded", "1.0");
    // a typo in the range type, and a document with nothing Trivy can match: never dropped silently
    let typo = serde_json::json!({"id": "BAD-RANGE-1", "modified": "2025-01-01T00:00:00Z", "affected": [
        {"package": {"ecosystem": "PyPI", "name": "x"}, "ranges": [{"type": "ECOSYTEM", "events": [{"introduced": "0"}]}]}]});
    std::fs::write(ws.path().join("advisories/pypi/BAD-RANGE-1.json"), serde_json::to_vec(&typo).unwrap())
        .unwrap();
    let empty = serde_json::json!({"id": "BAD-EMPTY-1", "modified": "2025-01-01T00:00:00Z", "affected": []});
    std::fs::write(ws.path().join("advisories/pypi/BAD-EMPTY-1.json"), serde_json::to_vec(&empty).unwrap())
        .unwrap();
    let r = run(ws.path(), &["build", "--json"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    let err = r.json()["error"].as_str().unwrap().to_string();
    for (file, why) in [
        ("BAD-ECO-1.json", "\"Debian:sid\" is not a release Trivy has a bucket for"),
        ("BAD-ECO-2.json", "\"Fedora:40\" is not an ecosystem Trivy knows"),
        ("BAD-VERSION-1.json", "$.affected[0].ranges[0].events[1].fixed"),
        ("BAD-NAME-1.json", "cannot be normalised"),
        ("BAD-RANGE-1.json", "unknown range type \"ECOSYTEM\""),
        ("BAD-EMPTY-1.json", "nothing Trivy can match"),
    ] {
        assert!(err.lines().any(|l| l.contains(file) && l.contains(why)), "{file}: {why} not in:\n{err}");
    }
    assert!(!ws.path().join("out/trivy-db").exists(), "nothing published on invalid input");
    let r = build_ok(ws.path(), &["--allow-invalid"]);
    assert_eq!(r["profiles"]["trivy-db"]["status"], "published");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path().join("out/trivy-db/manifest.json")).unwrap())
            .unwrap();
    let rejected: Vec<&str> =
        m["rejected"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(rejected.len(), 6, "{rejected:?}");
    assert!(rejected.iter().all(|p| p.starts_with("advisories/pypi/BAD-")));
}

#[test]
fn trivy_pulls_both_dbs_from_a_registry_into_an_empty_cache() {
    let Some(trivy) = trivy() else { return };
    let Some(registry) = tool("EXPORT_CENTER_REGISTRY", Some("/usr/bin/docker-registry"), "docker-registry")
    else {
        return;
    };
    let Some(skopeo) = tool("EXPORT_CENTER_SKOPEO", Some("/usr/bin/skopeo"), "skopeo") else { return };
    let ws = built_fixture();
    let reg = start_registry(&registry);
    let mut refs = Vec::new();
    for (profile, repo, tag) in [("trivy-db", "trivy-db", "2"), ("trivy-java-db", "trivy-java-db", "1")] {
        let dest = format!("127.0.0.1:{}/export-center/{repo}:{tag}", reg.port);
        let layout = format!("oci:{}:{tag}", ws.path().join("out").join(profile).join("oci").display());
        let o = Command::new(&skopeo)
            .args(["copy", "--dest-tls-verify=false", &layout, &format!("docker://{dest}")])
            .output()
            .unwrap();
        assert!(o.status.success(), "skopeo copy {layout}: {}", String::from_utf8_lossy(&o.stderr));
        refs.push(dest);
    }
    trivy_scans_through(&trivy, ws.path(), &refs);
}

/// Trivy, with empty caches, downloads both DBs from `refs` (`[db, java-db]`)
/// and finds each project's expected findings; the trivy.db it downloaded is
/// the one we built.
fn trivy_scans_through(trivy: &Path, ws: &Path, refs: &[String]) {
    let db_args = ["--db-repository", refs[0].as_str(), "--java-db-repository", refs[1].as_str()];
    let built = {
        let d = tempfile::tempdir().unwrap();
        untar_gz(&ws.join("out/trivy-db/db.tar.gz"), d.path());
        std::fs::read(d.path().join("trivy.db")).unwrap()
    };
    for name in ["pypi", "jar"] {
        // an empty cache each time: Trivy must download both DBs from the registry
        let cache = tempfile::tempdir().unwrap();
        let project = ws.join("projects").join(name);
        let (mode, want) = expected(&project);
        let got = scan(trivy, cache.path(), &mode, &project.join("root"), &db_args);
        assert_eq!(got, want, "project {name} through the registry");
        let downloaded = std::fs::read(cache.path().join("db/trivy.db")).expect("Trivy downloaded trivy.db");
        assert!(downloaded == built, "the DB Trivy pulled is the one we built");
    }
}

/// `export-center push` (no skopeo, no other program) sends both DBs;
/// Trivy downloads them with `--db-repository` / `--java-db-repository`
/// into an empty cache and finds exactly what the advisories say.
#[test]
fn trivy_pulls_both_dbs_that_push_sent_into_an_empty_cache() {
    let Some(trivy) = trivy() else { return };
    let Some(registry) = tool("EXPORT_CENTER_REGISTRY", Some("/usr/bin/docker-registry"), "docker-registry")
    else {
        return;
    };
    let ws = built_fixture();
    let reg = start_registry(&registry);
    let empty = tempfile::tempdir().unwrap();
    let prefix = format!("127.0.0.1:{}/ec", reg.port);
    let r = finish(
        cmd(ws.path())
            .args(["push", "trivy-db", "trivy-java-db", "--to", &prefix, "--insecure", "--json"])
            .env_remove("REGISTRY_AUTH")
            .env("DOCKER_CONFIG", empty.path())
            .env("PATH", empty.path()) // push runs no other program
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "push:\n{}\n{}", r.stdout, r.stderr);
    let pushed: Vec<String> = r.json()["pushed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reference"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pushed, [format!("{prefix}/trivy-db:2"), format!("{prefix}/trivy-java-db:1")]);
    trivy_scans_through(&trivy, ws.path(), &pushed);
}

/// `../shared/data` (or `EXPORT_CENTER_CORPUS`): every real OSV and
/// Node.js advisory builds into `trivy.db` with nothing rejected, twice
/// to the same bytes, and Trivy finds a known advisory with it.
#[test]
fn real_corpus_builds_reproducibly_and_trivy_uses_it() {
    let Some(data) = corpus("real_corpus_builds_reproducibly_and_trivy_uses_it") else {
        return;
    };
    let sources = [
        ("go", "osv", "osv/go-vulndb.tar.zst"),
        ("rustsec", "osv", "osv/rustsec.tar.zst"),
        ("pypa", "osv", "osv/pypa.tar.zst"),
        ("bitnami", "osv", "osv/bitnami-vulndb.tar.zst"),
        ("k8s", "osv", "osv/k8s-cve-feed-osv.tar.zst"),
        ("loopback", "osv", "osv/npm-loopback"),
        ("nodejs", "nodejs-advisory", "advisories/nodejs-security-wg-npm.tar.zst"),
        ("ghsa", "osv", "osv/ghsa.tar.zst"),
        ("distros", "osv", "osv/os-distro-sample.tar.zst"),
        ("secdb", "alpine-secdb", "os/alpine-secdb-vulnlist-3.17-3.18.tar.zst"),
    ];
    let mut toml = String::from("[workspace]\nsource-date-epoch = 1735689600\n");
    for (name, format, path) in sources {
        toml.push_str(&format!(
            "[sources.{name}]\nformat = \"{format}\"\npath = \"{}\"\n",
            data.join(path).display()
        ));
    }
    let names: Vec<String> = sources.iter().map(|s| format!("\"{}\"", s.0)).collect();
    toml.push_str(&format!("[profiles.trivy]\nkind = \"trivy:db\"\ninputs = [{}]\n", names.join(", ")));
    let build = || {
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(ws.path().join("profiles.toml"), &toml).unwrap();
        let r = build_ok(ws.path(), &[]);
        assert!(r["inputs"]["documents"].as_u64().unwrap() > 12_000, "{r}");
        assert_eq!(r["profiles"]["trivy"]["rejected"], 0, "real advisories rejected: {r}");
        ws
    };
    let (a, b) = (build(), build());
    assert!(out_files(a.path()) == out_files(b.path()), "two builds of the real corpus differ");
    // the real bbolt library's tx.Check() on the whole DB
    let unpacked = a.path().join("unpacked");
    untar_gz(&a.path().join("out/trivy/db.tar.gz"), &unpacked);
    match bbolt_checker() {
        Ok(bin) => {
            let out = Command::new(bin).arg(unpacked.join("trivy.db")).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.ends_with("ok\n"),
                "bbolt-check on the real corpus DB:\n{text}"
            );
        }
        Err(missing) => {
            assert!(
                std::env::var("EXPORT_CENTER_REQUIRE_VERIFIERS").as_deref() != Ok("1"),
                "EXPORT_CENTER_REQUIRE_VERIFIERS=1 but the Go bbolt checker cannot run: {missing}"
            );
            println!("SKIP: bbolt tx.Check() of the real corpus DB not run: {missing}");
        }
    }
    let Some(trivy) = trivy() else { return };
    let cache = a.path().join("trivy-cache");
    untar_gz(&a.path().join("out/trivy/db.tar.gz"), &cache.join("db"));
    let project = a.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    // PYSEC-2019-217 (CVE-2019-10906): jinja2 < 2.10.1
    std::fs::write(project.join("requirements.txt"), "jinja2==2.10\n").unwrap();
    let got = scan(&trivy, &cache, "fs", &project, OFFLINE);
    assert!(
        got.iter().any(|f| f.id == "CVE-2019-10906" && f.pkg == "jinja2" && f.fixed == "2.10.1"),
        "{got:?}"
    );
    std::fs::write(project.join("requirements.txt"), "jinja2==3.1.6\n").unwrap();
    assert!(scan(&trivy, &cache, "fs", &project, OFFLINE).is_empty(), "a current jinja2 has no finding");
    // shapes that went wrong once (review of issue 3): back-to-back and pre-release ranges,
    // and two RUSTSEC documents filed under the same CVEs
    std::fs::remove_file(project.join("requirements.txt")).unwrap();
    let lock: String = [("actix-http", "3.0.0"), ("hyper-staticfile", "0.9.4"), ("wasmtime", "0.33.1")]
        .iter()
        .map(|(n, v)| format!("[[package]]\nname = \"{n}\"\nversion = \"{v}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n"))
        .collect();
    std::fs::write(project.join("Cargo.lock"), format!("version = 3\n\n{lock}")).unwrap();
    let got = scan(&trivy, &cache, "fs", &project, OFFLINE);
    assert!(
        !got.iter().any(|f| f.pkg == "actix-http"),
        "actix-http 3.0.0 is past the fix 3.0.0-beta.9: {got:?}"
    );
    assert!(
        !got.iter().any(|f| f.pkg == "hyper-staticfile"),
        "hyper-staticfile 0.9.4 is the fixed version: {got:?}"
    );
    for id in ["CVE-2022-23636", "CVE-2022-31169"] {
        assert!(
            got.iter().any(|f| f.pkg == "wasmtime" && f.id == id && f.fixed == "0.38.2"),
            "wasmtime {id}: {got:?}"
        );
    }
}

/// A root file system of `files` (path → content) under `dir`.
fn root(dir: &Path, files: &[(&str, String)]) -> PathBuf {
    for (p, content) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir.to_path_buf()
}

fn alpine_root(dir: &Path, pkg: &str, version: &str) -> PathBuf {
    root(
        dir,
        &[
            ("etc/alpine-release", "3.18.4\n".into()),
            ("lib/apk/db/installed", format!("P:{pkg}\nV:{version}\nA:x86_64\no:{pkg}\n\n")),
        ],
    )
}

fn dpkg_root(dir: &Path, os: (&str, String), pkg: &str, source: &str, version: &str) -> PathBuf {
    let status = format!(
        "Package: {pkg}\nStatus: install ok installed\nArchitecture: amd64\nSource: {source}\nVersion: {version}\n\n"
    );
    root(dir, &[os, ("var/lib/dpkg/status", status)])
}

/// The reference values (../shared/data/README.md) with the real
/// scanner: OS roots of Alpine 3.18 (secdb), Ubuntu 18.04 (USN-5614-1) and
/// Debian 9 (DLA-3022-1), and GHSA advisories with GHSA's severity; the
/// safe versions have none of these findings. Also: a CVE PyPA lists
/// without a severity shows GHSA's HIGH when both are inputs.
#[test]
fn os_roots_and_ghsa_advisories_of_the_real_corpus_scan_as_their_sources_say() {
    let Some(data) = corpus("os_roots_and_ghsa_advisories_of_the_real_corpus_scan_as_their_sources_say")
    else {
        return;
    };
    let sources = [
        ("distros", "osv", "osv/os-distro-sample.tar.zst", ""),
        ("ghsa", "osv", "osv/ghsa.tar.zst", "data-source = { id = \"ghsa\", name = \"GitHub Security Advisory\" }\n"),
        ("pypa", "osv", "osv/pypa.tar.zst", ""),
        (
            "secdb",
            "alpine-secdb",
            "os/alpine-secdb-vulnlist-3.17-3.18.tar.zst",
            "data-source = { id = \"alpine\", name = \"Alpine Secdb\", url = \"https://secdb.alpinelinux.org/\" }\n",
        ),
    ];
    let mut toml = String::from("[workspace]\nsource-date-epoch = 1735689600\n");
    for (name, format, path, extra) in sources {
        toml.push_str(&format!(
            "[sources.{name}]\nformat = \"{format}\"\npath = \"{}\"\n{extra}",
            data.join(path).display()
        ));
    }
    toml.push_str(
        "[profiles.trivy]\nkind = \"trivy:db\"\ninputs = [\"distros\", \"ghsa\", \"pypa\", \"secdb\"]\n",
    );
    let build = || {
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(ws.path().join("profiles.toml"), &toml).unwrap();
        let r = build_ok(ws.path(), &[]);
        assert_eq!(r["profiles"]["trivy"]["rejected"], 0, "real advisories rejected: {r}");
        ws
    };
    let (a, b) = (build(), build());
    assert!(out_files(a.path()) == out_files(b.path()), "two builds of the real corpus differ");
    let Some(trivy) = trivy() else { return };
    let cache = a.path().join("trivy-cache");
    untar_gz(&a.path().join("out/trivy/db.tar.gz"), &cache.join("db"));
    let scan_root = |dir: PathBuf| scan(&trivy, &cache, "rootfs", &dir, OFFLINE);
    let has = |got: &[Finding], id: &str, pkg: &str, fixed: &str, severity: &str| {
        got.iter().any(|f| f.id == id && f.pkg == pkg && f.fixed == fixed && f.severity == severity)
    };
    let t = tempfile::tempdir().unwrap();
    let lsb = || {
        ("etc/lsb-release", "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=18.04\nDISTRIB_CODENAME=bionic\n".to_string())
    };
    let deb = || ("etc/debian_version", "9.13\n".to_string());
    // (root, the finding it must have, or None: that id must be absent)
    let cases: Vec<(PathBuf, &str, &str, &str, Option<&str>)> = vec![
        (
            alpine_root(&t.path().join("a1"), "curl", "8.0.0-r0"),
            "CVE-2023-28319",
            "curl",
            "8.1.0-r0",
            Some("UNKNOWN"),
        ),
        (alpine_root(&t.path().join("a2"), "curl", "8.1.0-r0"), "CVE-2023-28319", "curl", "8.1.0-r0", None),
        (
            alpine_root(&t.path().join("a3"), "cups", "2.4.2-r0"),
            "CVE-2023-32324",
            "cups",
            "2.4.2-r7",
            Some("UNKNOWN"),
        ),
        (alpine_root(&t.path().join("a4"), "cups", "2.4.2-r7"), "CVE-2023-32324", "cups", "2.4.2-r7", None),
        (
            dpkg_root(
                &t.path().join("u1"),
                lsb(),
                "libwayland-client0",
                "wayland",
                "1.16.0-1ubuntu1.1~18.04.3",
            ),
            "CVE-2021-3782",
            "libwayland-client0",
            "1.16.0-1ubuntu1.1~18.04.4",
            Some("MEDIUM"), // USN-5614-1's Ubuntu priority for it
        ),
        (
            dpkg_root(
                &t.path().join("u2"),
                lsb(),
                "libwayland-client0",
                "wayland",
                "1.16.0-1ubuntu1.1~18.04.4",
            ),
            "CVE-2021-3782",
            "libwayland-client0",
            "",
            None,
        ),
        (
            dpkg_root(&t.path().join("d1"), deb(), "dpkg", "dpkg", "1.18.25"),
            "CVE-2022-1664",
            "dpkg",
            "1.18.26",
            Some("UNKNOWN"),
        ),
        (
            dpkg_root(&t.path().join("d2"), deb(), "dpkg", "dpkg", "1.18.26"),
            "CVE-2022-1664",
            "dpkg",
            "",
            None,
        ),
    ];
    for (dir, id, pkg, fixed, severity) in cases {
        let got = scan_root(dir.clone());
        match severity {
            Some(sev) => assert!(
                has(&got, id, pkg, fixed, sev),
                "{}: want {id} {pkg} fixed {fixed} {sev}: {got:?}",
                dir.display()
            ),
            None => assert!(
                !got.iter().any(|f| f.id == id),
                "{}: {id} reported for the fixed version: {got:?}",
                dir.display()
            ),
        }
    }
    // GHSA, with GHSA's severity words (MODERATE is MEDIUM); findings carry the CVE alias
    let project = t.path().join("project");
    let lang = [
        ("package-lock.json", "{\"name\":\"p\",\"version\":\"1.0.0\",\"lockfileVersion\":3,\"packages\":{\"\":{\"name\":\"p\",\"version\":\"1.0.0\",\"dependencies\":{\"lodash\":\"VERSION\"}},\"node_modules/lodash\":{\"version\":\"VERSION\"}}}", "3.7.0", "4.17.19", "CVE-2020-8203", "lodash", "HIGH"),
        ("pom.xml", "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion><groupId>p</groupId><artifactId>p</artifactId><version>1</version><dependencies><dependency><groupId>com.nimbusds</groupId><artifactId>nimbus-jose-jwt</artifactId><version>VERSION</version></dependency></dependencies></project>", "7.8.1", "7.9", "CVE-2019-17195", "com.nimbusds:nimbus-jose-jwt", "CRITICAL"),
        ("packages.lock.json", "{\"version\":1,\"dependencies\":{\"net8.0\":{\"jQuery\":{\"type\":\"Direct\",\"requested\":\"[VERSION, )\",\"resolved\":\"VERSION\",\"contentHash\":\"AAAA\"}}}}", "1.6.2", "1.6.3", "CVE-2011-4969", "jQuery", "MEDIUM"),
        ("requirements.txt", "protobuf==VERSION\n", "3.14.0", "3.15.0", "CVE-2021-22570", "protobuf", "HIGH"),
    ];
    for (file, template, bad, good, id, pkg, sev) in lang {
        let _ = std::fs::remove_dir_all(&project);
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join(file), template.replace("VERSION", bad)).unwrap();
        let got = scan(&trivy, &cache, "fs", &project, OFFLINE);
        let hits: Vec<&Finding> = got.iter().filter(|f| f.id == id && f.pkg == pkg).collect();
        assert!(!hits.is_empty(), "{file} {pkg} {bad}: no {id}: {got:?}");
        assert!(hits.iter().all(|f| f.severity == sev), "{file} {pkg} {bad}: {id} not {sev}: {hits:?}");
        assert!(hits.iter().any(|f| f.fixed.split(", ").any(|v| v == good)), "{pkg}: fixed {good}: {hits:?}");
        std::fs::write(project.join(file), template.replace("VERSION", good)).unwrap();
        let got = scan(&trivy, &cache, "fs", &project, OFFLINE);
        assert!(!got.iter().any(|f| f.id == id), "{file} {pkg} {good} is fixed: {got:?}");
    }
}

#[test]
fn signed_trivy_exports_carry_detached_signatures_that_verify() {
    use std::os::unix::fs::PermissionsExt;
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), ws.path());
    let key = ws.path().join("export.key");
    std::fs::copy(repo().join("tests/fixtures/keys/TEST-ONLY-signing.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut toml = std::fs::read_to_string(ws.path().join("profiles.toml")).unwrap();
    toml.push_str("\n[signing]\nkey = \"export.key\"\n");
    std::fs::write(ws.path().join("profiles.toml"), toml).unwrap();
    build_ok(ws.path(), &[]);
    let public = repo().join("tests/fixtures/keys/TEST-ONLY-signing.pub");
    for (profile, bundle, sig) in [
        ("trivy-db", "db.tar.gz", "signatures/trivy-db.sig"),
        ("trivy-java-db", "javadb.tar.gz", "signatures/trivy-java-db.sig"),
    ] {
        let out = ws.path().join("out").join(profile);
        let r = run(
            ws.path(),
            &["verify", out.to_str().unwrap(), "--trust-root", public.to_str().unwrap(), "--json"],
        );
        assert_eq!(r.code, 0, "{}", r.stdout);
        assert_eq!(r.json()["signature"], "verified");
        // the provenance subjects include the OCI layout
        let stmt: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("provenance.json")).unwrap()).unwrap();
        let names: Vec<&str> =
            stmt["subject"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert!(
            names.contains(&bundle) && names.contains(&"oci/index.json") && names.len() == 7,
            "{names:?}"
        );
        // the detached signature, checked by third-party code (python cryptography)
        if let Ok(py) = std::env::var("EXPORT_CENTER_VERIFY_PY") {
            let script = "import base64,sys\nfrom cryptography.hazmat.primitives.serialization import load_pem_public_key\n\
                          k=load_pem_public_key(open(sys.argv[1],'rb').read())\n\
                          k.verify(base64.b64decode(open(sys.argv[2]).read()), open(sys.argv[3],'rb').read())\nprint('OK')\n";
            let o = Command::new(py)
                .arg("-c")
                .arg(script)
                .arg(&public)
                .arg(out.join(sig))
                .arg(out.join(bundle))
                .output()
                .unwrap();
            assert!(o.status.success(), "{profile}: {}", String::from_utf8_lossy(&o.stderr));
        }
        if let Some(ind) = std::env::var_os("EXPORT_CENTER_VERIFY_PY") {
            let o = Command::new(ind)
                .arg(repo().join("scripts/verify_export.py"))
                .arg(&out)
                .arg(&public)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{profile}: independent verifier: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        // a different signature in the .sig file fails
        let copy = tempfile::tempdir().unwrap();
        copy_dir(&out, copy.path());
        let mut text = std::fs::read_to_string(copy.path().join(sig)).unwrap();
        let c = if text.starts_with('A') { "B" } else { "A" };
        text.replace_range(0..1, c);
        std::fs::write(copy.path().join(sig), &text).unwrap();
        let r = run(
            ws.path(),
            &["verify", copy.path().to_str().unwrap(), "--trust-root", public.to_str().unwrap(), "--json"],
        );
        assert_eq!(r.code, 3);
        assert!(r.stdout.contains(sig), "{}", r.stdout);
    }
}

/// Rows of one vulnerability merged across documents ("first origin that
/// has a field wins") give the same DB whatever the shard layout: the
/// fixture files CVE-2025-90006 under three documents, only the later two
/// with severities, and every shard count from 1 to 8 must agree.
#[test]
fn the_db_does_not_depend_on_the_shard_layout() {
    let a = built_fixture();
    let files = |ws: &Path| -> Vec<(String, Vec<u8>)> {
        out_files(ws).into_iter().filter(|(n, _)| n.starts_with("trivy-db/")).collect()
    };
    let want = files(a.path());
    for shards in 1..=8 {
        let b = tempfile::tempdir().unwrap();
        copy_dir(&fixture(), b.path());
        let toml = std::fs::read_to_string(b.path().join("profiles.toml")).unwrap();
        let toml = toml
            .replace("path = \"advisories/pypi\"", &format!("path = \"advisories/pypi\"\nshards = {shards}"))
            .replace("path = \"nodejs\"", "path = \"nodejs\"\nshards = 2")
            // three Ubuntu documents share CVE-2025-90100's slots
            .replace(
                "path = \"advisories/ubuntu\"",
                &format!("path = \"advisories/ubuntu\"\nshards = {}", 1 + shards % 4),
            );
        std::fs::write(b.path().join("profiles.toml"), toml).unwrap();
        build_ok(b.path(), &["--jobs", "1"]);
        assert!(files(b.path()) == want, "the trivy-db export changed with pypi shards = {shards}");
    }
}

#[test]
fn verify_catches_tampering_with_the_db_and_its_oci_layout() {
    let ws = built_fixture();
    let good = ws.path().join("out/trivy-db");
    let index = "oci/index.json".to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(good.join("manifest.json")).unwrap()).unwrap();
    let layer = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .find(|p| p.ends_with(manifest["bundle"]["sha256"].as_str().unwrap()))
        .expect("the layer is listed in files[]");
    for target in [index, layer, "db.tar.gz".to_string()] {
        let d = tempfile::tempdir().unwrap();
        copy_dir(&good, d.path());
        let p = d.path().join(&target);
        // hard links were copied as separate files: only this one changes
        let mut b = std::fs::read(&p).unwrap();
        let i = b.len() / 2;
        b[i] ^= 1;
        std::fs::write(&p, b).unwrap();
        let r = run(ws.path(), &["verify", d.path().to_str().unwrap(), "--json"]);
        assert_eq!(r.code, 3, "{target}: {}", r.stdout);
        assert!(
            r.json()["problems"].as_array().unwrap().iter().any(|x| x["file"] == target.as_str()),
            "{target}: {}",
            r.stdout
        );
    }
}
