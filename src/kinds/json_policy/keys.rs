//! The lookup keys of SBOM packages in json:policy's advisory index: the
//! DB bucket prefix of a package's Trivy type and its name normalised as
//! the trivy:db conversion normalises the DB's keys (one normalisation,
//! `kinds::trivy_db::model::normalise_name`), and which CycloneDX documents
//! carry VEX. Shared by `policy-facts` and `policy-evaluate`.

use serde_json::Value;

use crate::kinds::trivy_db::model;
use crate::policy::sbom;

/// The DB bucket prefix of a Trivy package type (`pkg/detector/library/driver.go`).
pub fn prefix(trivy_type: &str) -> Option<&'static str> {
    Some(match trivy_type {
        "python-pkg" => "pip",
        "node-pkg" => "npm",
        "jar" => "maven",
        "gobinary" => "go",
        "cargo" => "cargo",
        "gemspec" => "rubygems",
        "nuget" => "nuget",
        "composer" => "composer",
        "hex" => "erlang",
        "pub" => "pub",
        "swift" => "swift",
        "cocoapods" => "cocoapods",
        "conan" => "conan",
        "bitnami" => "bitnami",
        "julia" => "julia",
        "k8s" => "k8s",
        _ => return None,
    })
}

/// The DB lookup key of a package: its ecosystem's bucket prefix and its
/// name normalised as the DB's keys are (`model::normalise_name`); `None`
/// when Trivy would not look it up (no version, an ecosystem without
/// advisory buckets, a name that cannot be a key, a package Trivy looks
/// up in Seal Security's buckets only: `matcher::seal_routed`).
pub fn lookup_key(p: &sbom::Package) -> Option<(&'static str, String)> {
    if p.version.is_empty() {
        return None;
    }
    let prefix = prefix(p.trivy_type)?;
    if crate::policy::matcher::seal_routed(prefix, &p.name, &p.version) {
        return None;
    }
    let eco = model::ECOSYSTEMS.iter().find(|e| e.prefix == prefix)?;
    Some((prefix, model::normalise_name(eco, &p.name).ok()?))
}

/// Whether a CycloneDX document carries VEX statements.
pub fn is_cyclonedx_vex(doc: &Value) -> bool {
    doc.get("vulnerabilities").and_then(Value::as_array).is_some_and(|v| !v.is_empty())
}
