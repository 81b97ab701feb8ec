//! Kinds are units (issue 9 §2): each kind validates its own options,
//! refuses a `select` it does not apply, a workspace rule replaces a
//! registered kind's rule (and provenance records the rule's digest) but
//! cannot add a kind, rule variables are checked, and selectors follow the
//! record type, not member names.

mod common;

use std::path::Path;

use common::*;

/// Append `extra` to the sample workspace's profiles.toml; returns the
/// 1-based line of the first line of `extra` that contains `marker`.
fn append(ws: &Path, extra: &str, marker: &str) -> usize {
    let file = ws.join("profiles.toml");
    let mut text = std::fs::read_to_string(&file).unwrap();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let start = text.len();
    text.push_str(extra);
    let at = start + extra.find(marker).expect("marker in extra");
    std::fs::write(&file, &text).unwrap();
    text[..at].matches('\n').count() + 1
}

fn refused(ws: &Path, line: usize, needle: &str) {
    let r = run(ws, &["build"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&format!("profiles.toml:{line}:")), "line {line} not named:\n{}", r.stderr);
    assert!(r.stderr.contains(needle), "{needle:?} not in:\n{}", r.stderr);
    assert!(!ws.join("out").exists(), "nothing is built");
}

#[test]
fn compression_level_on_a_trivy_db_profile_is_refused_naming_the_line() {
    let ws = sample_workspace();
    let line = append(
        ws.path(),
        "[profiles.t2]\nkind = \"trivy:db\"\ninputs = [\"pypi\"]\ncompression-level = 5\n",
        "compression-level",
    );
    refused(
        ws.path(),
        line,
        "profiles.t2.compression-level: trivy:db profiles take no compression-level (their options: next-update-hours)",
    );
}

#[test]
fn next_update_hours_on_a_json_raw_profile_is_refused_naming_the_line() {
    let ws = sample_workspace();
    let line = append(
        ws.path(),
        "[profiles.j2]\nkind = \"json:raw\"\ninputs = [\"pypi\"]\nnext-update-hours = 6\n",
        "next-update-hours",
    );
    refused(
        ws.path(),
        line,
        "profiles.j2.next-update-hours: json:raw profiles take no next-update-hours (their options: compression-level)",
    );
}

#[test]
fn an_option_out_of_its_kinds_range_is_refused_naming_the_line() {
    let ws = sample_workspace();
    let line = append(
        ws.path(),
        "[profiles.t2]\nkind = \"trivy:db\"\ninputs = [\"pypi\"]\nnext-update-hours = 0\n",
        "next-update-hours",
    );
    refused(ws.path(), line, "profiles.t2.next-update-hours: must be between 1 and 8784");
}

#[test]
fn select_on_a_trivy_java_db_profile_is_refused() {
    let ws = sample_workspace();
    let maven = repo().join("tests/fixtures/trivy/maven-repo");
    let line = append(
        ws.path(),
        &format!(
            "[sources.jars]\nformat = \"maven-repo\"\npath = {:?}\n\n[profiles.java]\nkind = \"trivy:java-db\"\n\
             inputs = [\"jars\"]\n[profiles.java.select]\nids = [\"X-*\"]\n",
            maven.display().to_string()
        ),
        "[profiles.java.select]",
    );
    refused(ws.path(), line, "profiles.java.select: trivy:java-db profiles do not apply selectors");
}

fn provenance_rule(ws: &Path, profile: &str) -> serde_json::Value {
    let text = std::fs::read(ws.join("out").join(profile).join("provenance.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    v["predicate"]["buildDefinition"]["internalParameters"]["rule"].clone()
}

#[test]
fn a_workspace_rule_replaces_a_builtin_kinds_rule_and_provenance_records_its_digest() {
    let ws = sample_workspace();
    build_ok(ws.path(), &["json-raw"]);
    let builtin = std::fs::read_to_string(repo().join("src/kinds/json_raw/rule.toml")).unwrap();
    let rule = provenance_rule(ws.path(), "json-raw");
    assert_eq!(rule["sha256"], sha256_hex(builtin.as_bytes()), "{rule}");
    assert_eq!(rule["path"], "src/kinds/json_raw/rule.toml");
    assert_eq!(rule["kind"], "json:raw");
    let bundle = std::fs::read(ws.path().join("out/json-raw/json-raw.tar.zst")).unwrap();

    // the same version, one comment more: another rule, so another attestation
    let mine = format!("{builtin}\n# the workspace's own copy\n");
    std::fs::create_dir_all(ws.path().join("rules")).unwrap();
    std::fs::write(ws.path().join("rules/mine.toml"), &mine).unwrap();
    build_ok(ws.path(), &["json-raw"]);
    let rule = provenance_rule(ws.path(), "json-raw");
    assert_eq!(rule["sha256"], sha256_hex(mine.as_bytes()), "{rule}");
    assert_eq!(rule["path"], "rules/mine.toml");
    assert_eq!(rule["version"], 2);
    let again = std::fs::read(ws.path().join("out/json-raw/json-raw.tar.zst")).unwrap();
    assert!(bundle == again, "the bundle is the same: only the rule's record changed");
}

#[test]
fn a_workspace_rule_cannot_add_a_kind() {
    let ws = sample_workspace();
    std::fs::create_dir_all(ws.path().join("rules")).unwrap();
    let builtin = std::fs::read_to_string(repo().join("src/kinds/json_raw/rule.toml")).unwrap();
    std::fs::write(
        ws.path().join("rules/cooked.toml"),
        builtin.replace("kind = \"json:raw\"", "kind = \"json:cooked\""),
    )
    .unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("rules/cooked.toml")
            && r.stderr.contains("\"json:cooked\" is not a registered kind"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("needs code"), "the error says why: {}", r.stderr);
}

#[test]
fn an_unknown_rule_variable_is_refused_naming_the_file_and_step() {
    let ws = sample_workspace();
    std::fs::create_dir_all(ws.path().join("rules")).unwrap();
    let builtin = std::fs::read_to_string(repo().join("src/kinds/json_raw/rule.toml")).unwrap();
    let bad = builtin.replace("{shard.index}.jsonl", "{shard.indx}.jsonl");
    assert_ne!(bad, builtin);
    std::fs::write(ws.path().join("rules/json-raw.toml"), bad).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("rules/json-raw.toml: step \"encode\": unknown variable {shard.indx}"),
        "{}",
        r.stderr
    );
}

/// Member path → records, from a manifest.
fn members(ws: &Path, profile: &str) -> Vec<(String, u64)> {
    let text = std::fs::read(ws.join("out").join(profile).join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let mut v: Vec<(String, u64)> = m["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e["records"].as_u64().unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn selectors_follow_the_record_type_not_the_member_name() {
    let ws = sample_workspace();
    build_ok(ws.path(), &["json-web"]);
    let want = members(ws.path(), "json-web");
    assert!(want.iter().any(|(p, _)| p.starts_with("advisories/")), "{want:?}");
    // a rule naming its members differently selects the same records
    std::fs::create_dir_all(ws.path().join("rules")).unwrap();
    let builtin = std::fs::read_to_string(repo().join("src/kinds/json_raw/rule.toml")).unwrap();
    let renamed = builtin.replace("member = \"{shard.type}/", "member = \"x-{shard.type}/");
    assert_ne!(renamed, builtin);
    std::fs::write(ws.path().join("rules/json-raw.toml"), renamed).unwrap();
    build_ok(ws.path(), &["json-web"]);
    let got: Vec<(String, u64)> = members(ws.path(), "json-web")
        .into_iter()
        .map(|(p, n)| (p.strip_prefix("x-").unwrap_or(&p).to_string(), n))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn verify_reads_a_bundle_by_its_kinds_hook_and_refuses_an_unknown_kind() {
    let ws = sample_workspace();
    build_ok(ws.path(), &["trivy-db"]);
    let out = ws.path().join("out/trivy-db");
    let r = run(ws.path(), &["verify", out.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // the kind, not the bundle's name, says how to read it
    let m = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(m.contains("\"kind\": \"trivy:db\""), "{m}");
    std::fs::write(
        out.join("manifest.json"),
        m.replace("\"kind\": \"trivy:db\"", "\"kind\": \"json:cooked\""),
    )
    .unwrap();
    let r = run(ws.path(), &["verify", out.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let problems = r.json()["problems"].to_string();
    assert!(problems.contains("kind json:cooked is not one this build knows"), "{problems}");
}
