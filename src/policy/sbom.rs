//! The packages of an SBOM (CycloneDX JSON, SPDX 2.x JSON) as Trivy
//! 0.76.0's `trivy sbom` reads them: json:policy matches these, so they
//! must be the packages Trivy would scan (docs/research/json-policy-trivy.md
//! §1; checked against `trivy sbom --list-all-pkgs` for every SBOM of the
//! real corpus by `tests/sbom_packages.rs`).
//!
//! - CycloneDX: `metadata.component` and the top-level `components[]`
//!   (nested components are not read); types `library`, `framework`,
//!   `application`, `container`, `operating-system`, `platform`, `file`.
//! - SPDX 2.x: `packages[]`, the purl from the first `externalRefs` entry
//!   of type `purl` in category `PACKAGE-MANAGER`; an SPDX purl that does
//!   not parse fails the whole SBOM (a CycloneDX one skips its component).
//! - A component needs a purl of a language type Trivy scans
//!   ([`trivy_type`]); OS packages (`apk`, `deb`, `rpm`) are not in scope.
//! - The name Trivy looks up is the component's (`group/name` in
//!   CycloneDX), except Maven (`namespace:name` of the purl) and bitnami and
//!   cocoapods (`name/subpath`); the version is the purl's.
//! - Dependency edges ([`edges`], what VEX subcomponent statements follow):
//!   CycloneDX `dependencies[]` `ref → dependsOn`; SPDX: every
//!   relationship between two packages but `DESCRIBES` read as
//!   `spdxElementId → relatedSpdxElement`, whatever its type (so
//!   `DEPENDENCY_OF` comes out reversed, as in Trivy).

use serde_json::Value;

use super::purl::Purl;

/// One package as Trivy scans it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Package {
    /// Trivy's type (`python-pkg`, `node-pkg`, `jar`, `gobinary`, …).
    pub trivy_type: &'static str,
    /// The name Trivy looks the package up by.
    pub name: String,
    /// From the purl.
    pub version: String,
    pub purl: Purl,
    /// The purl's canonical form (`purl.to_string()`, computed once: VEX
    /// matching compares it often).
    pub canonical: String,
    /// CycloneDX `bom-ref` or SPDX `SPDXID`.
    pub reference: Option<String>,
}

impl Package {
    /// Trivy's package ID (`PkgID`, what `DependsOn` lists): `name@version`,
    /// `group:artifact:version` for Maven.
    pub fn trivy_id(&self) -> String {
        let sep = if self.trivy_type == "jar" { ':' } else { '@' };
        format!("{}{sep}{}", self.name, self.version)
    }
}

/// Trivy's package type for a purl type (`pkg/purl/purl.go` `LangType`);
/// `None`: not scanned as a language package.
pub fn trivy_type(purl: &Purl) -> Option<&'static str> {
    Some(match purl.ty.as_str() {
        "pypi" => "python-pkg",
        "npm" => "node-pkg",
        "maven" => "jar",
        "golang" => "gobinary",
        "cargo" => "cargo",
        "gem" => "gemspec",
        "nuget" => "nuget",
        "composer" => "composer",
        "hex" => "hex",
        "pub" => "pub",
        "swift" => "swift",
        "cocoapods" => "cocoapods",
        "conan" => "conan",
        "bitnami" => "bitnami",
        "julia" => "julia",
        "k8s" if purl.namespace.is_empty() => "k8s",
        _ => return None,
    })
}

fn package(component_name: String, purl: Purl, reference: Option<String>) -> Option<Package> {
    let trivy_type = trivy_type(&purl)?;
    let name = match purl.ty.as_str() {
        "maven" => format!("{}:{}", purl.namespace, purl.name),
        "bitnami" | "cocoapods" if !purl.subpath.is_empty() => format!("{}/{}", purl.name, purl.subpath),
        "bitnami" | "cocoapods" => purl.name.clone(),
        _ => component_name,
    };
    let canonical = purl.to_string();
    Some(Package { trivy_type, name, version: purl.version.clone(), purl, canonical, reference })
}

const CDX_TYPES: &[&str] =
    &["library", "framework", "application", "container", "operating-system", "platform", "file"];

/// The packages of a CycloneDX or SPDX 2.x JSON SBOM, in document order.
pub fn packages(doc: &Value) -> Result<Vec<Package>, String> {
    if doc.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        return Ok(cyclonedx(doc));
    }
    if doc.get("spdxVersion").and_then(Value::as_str).is_some_and(|v| v.starts_with("SPDX-2.")) {
        return spdx(doc);
    }
    Err("not a CycloneDX JSON or SPDX 2.x JSON SBOM".into())
}

fn cyclonedx(doc: &Value) -> Vec<Package> {
    let meta = doc.pointer("/metadata/component").into_iter();
    let comps = doc.get("components").and_then(Value::as_array).into_iter().flatten();
    meta.chain(comps)
        .filter_map(|c| {
            let ty = c.get("type").and_then(Value::as_str).unwrap_or("");
            if !CDX_TYPES.contains(&ty) {
                return None;
            }
            let purl = Purl::parse(c.get("purl").and_then(Value::as_str)?).ok()?;
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            let name = match c.get("group").and_then(Value::as_str).filter(|g| !g.is_empty()) {
                Some(g) => format!("{g}/{name}"),
                None => name.to_string(),
            };
            let reference = c.get("bom-ref").and_then(Value::as_str).map(String::from);
            package(name, purl, reference)
        })
        .collect()
}

fn spdx(doc: &Value) -> Result<Vec<Package>, String> {
    let mut out = Vec::new();
    for (i, p) in doc.get("packages").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let refs = p.get("externalRefs").and_then(Value::as_array).into_iter().flatten();
        let purl = refs
            .filter(|r| {
                r.get("referenceType").and_then(Value::as_str) == Some("purl")
                    && r.get("referenceCategory").and_then(Value::as_str).map(|c| c.replace('_', "-"))
                        == Some("PACKAGE-MANAGER".into())
            })
            .find_map(|r| r.get("referenceLocator").and_then(Value::as_str));
        let Some(purl) = purl else { continue };
        let purl = Purl::parse(purl).map_err(|e| format!("$.packages[{i}].externalRefs: {e}"))?;
        let name = p.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let reference = p.get("SPDXID").and_then(Value::as_str).map(String::from);
        out.extend(package(name, purl, reference));
    }
    Ok(out)
}

/// The dependency edges of an SBOM, `(from, to)` by CycloneDX `bom-ref` /
/// SPDX `SPDXID`, in document order (see the module doc).
pub fn edges(doc: &Value) -> Vec<(String, String)> {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    if doc.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        let deps = doc.get("dependencies").and_then(Value::as_array).into_iter().flatten();
        return deps
            .filter_map(|d| Some((s(d, "ref")?, d.get("dependsOn").and_then(Value::as_array)?)))
            .flat_map(|(from, to)| {
                to.iter().filter_map(Value::as_str).map(move |t| (from.clone(), t.to_string()))
            })
            .collect();
    }
    let rels = doc.get("relationships").and_then(Value::as_array).into_iter().flatten();
    rels.filter(|r| r.get("relationshipType").and_then(Value::as_str) != Some("DESCRIBES"))
        .filter_map(|r| Some((s(r, "spdxElementId")?, s(r, "relatedSpdxElement")?)))
        .collect()
}
