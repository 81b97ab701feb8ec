//! VEX applied to findings as Trivy 0.76.0's `trivy sbom --vex` applies it
//! (docs/research/json-policy-trivy.md §3), so json:policy suppresses
//! exactly what Trivy suppresses: OpenVEX, CSAF 2.0 (`csaf_vex`) and
//! CycloneDX VEX, told apart as Trivy does (CycloneDX, then OpenVEX by a
//! non-empty `@context`, then CSAF by `vulnerabilities`).
//!
//! - **Documents** are tried in the order given; the first that says
//!   `not_affected` or `fixed` for a finding decides it.
//! - **A statement matches** a vulnerability when its `name`, `@id` or any
//!   alias equals the finding's id; a product when its `@id` equals the
//!   package's canonical purl, or its `@id` / `identifiers.purl` is a purl
//!   with the same type, namespace and name, no version or the same
//!   version string, qualifiers all present in the package's and the
//!   subpath (when set) equal.
//! - **Subcomponents**: asked about the package itself, a product match is
//!   enough; asked about a descendant, a statement without subcomponents
//!   covers every descendant, else one of its subcomponents must match it.
//! - **Precedence within a document**: of the statements matching
//!   (vulnerability, product, subcomponent), the greatest by
//!   (vulnerability `name`, timestamp (the statement's, else the
//!   document's)) wins, the first in the document among equals.
//! - **The graph**: packages with no parent hang under the scanned
//!   artifact (the root, which no statement names). A finding on P is
//!   suppressed when the document says so for P itself, or when on every
//!   path from P up to the root some ancestor A is `not_affected`/`fixed`
//!   for (product A, subcomponent P). A cycle does not reach the root.
//! - Only `not_affected` and `fixed` suppress.
//! - **CSAF**: the first `vulnerabilities[]` entry whose `cve` is the
//!   finding's id; its `known_not_affected` (not_affected) and `fixed`
//!   product ids; asked about the package itself, a product id matches by
//!   its `product_identification_helper` purls; asked about a descendant,
//!   only through a `default_component_of` / `installed_on` /
//!   `installed_with` relationship whose `relates_to_product_reference`
//!   purls name the ancestor and `product_reference` purls the descendant.
//! - **CycloneDX VEX**: `vulnerabilities[]` by `id` (the last entry of an
//!   id wins), `affects[].ref` a BOM-Link `urn:cdx:<serial>/<version>#<ref>`
//!   naming this SBOM's `serialNumber` and `version`, the fragment a
//!   component's `bom-ref` or its canonical purl; `not_affected` and
//!   `false_positive` suppress as not_affected, `resolved` and
//!   `resolved_with_pedigree` as fixed; no subcomponent logic (a statement
//!   on an ancestor covers what lies only beneath it). Refused with an SPDX
//!   SBOM, as Trivy refuses it.

use std::collections::HashSet;

use serde_json::Value;

use super::purl::Purl;
use super::sbom::Package;
use crate::timefmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    NotAffected,
    Fixed,
    Affected,
    UnderInvestigation,
}

impl Status {
    pub fn suppresses(self) -> bool {
        matches!(self, Status::NotAffected | Status::Fixed)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotAffected => "not_affected",
            Status::Fixed => "fixed",
            Status::Affected => "affected",
            Status::UnderInvestigation => "under_investigation",
        }
    }
}

/// A product or subcomponent of a statement.
#[derive(Clone, Debug)]
struct Product {
    id: Option<String>,
    purls: Vec<Purl>,
}

#[derive(Clone, Debug)]
struct Statement {
    /// Where it is in its document (`statements[3]`).
    at: String,
    /// `vulnerability.name`, the precedence key.
    name: String,
    /// name, `@id` and aliases.
    ids: Vec<String>,
    products: Vec<(Product, Vec<Product>)>,
    status: Status,
    justification: Option<String>,
    timestamp: Option<timefmt::Instant>,
}

/// One CSAF vulnerability: `cve`, product ids by status and the impact details.
#[derive(Clone, Debug, Default)]
struct CsafVuln {
    cve: Option<String>,
    not_affected: Vec<String>,
    fixed: Vec<String>,
    affected: Vec<String>,
    under_investigation: Vec<String>,
    impact: Option<String>,
}

/// A CSAF VEX document, as far as matching needs it.
#[derive(Clone, Debug, Default)]
struct Csaf {
    /// Every `vulnerabilities[]` entry, in order.
    vulns: Vec<CsafVuln>,
    /// product id → its helpers' purls.
    purls: std::collections::HashMap<String, Vec<Purl>>,
    /// relationship product id → `(product_reference, relates_to_product_reference)`.
    rels: std::collections::HashMap<String, Vec<(String, String)>>,
}

/// A CycloneDX VEX statement.
#[derive(Clone, Debug)]
struct CdxStatement {
    /// Where it is in its document (`vulnerabilities[1]`).
    at: String,
    id: String,
    status: Option<Status>,
    justification: Option<String>,
    /// BOM-Link fragments naming this SBOM's components.
    refs: Vec<String>,
}

#[derive(Clone, Debug)]
enum Body {
    OpenVex(Vec<Statement>),
    Csaf(Csaf),
    CycloneDx(Vec<CdxStatement>),
}

/// One loaded VEX document.
#[derive(Clone, Debug)]
pub struct Document {
    /// What it is called in reports (the path given).
    pub source: String,
    /// Who issued it: OpenVEX `author`, CSAF `document.publisher.name`,
    /// CycloneDX `metadata.authors[0].name` (else the manufacturer's or
    /// supplier's name); what a policy's `vex.trust` matches.
    pub issuer: Option<String>,
    body: Body,
}

/// What decided a suppressed finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub status: Status,
    pub source: String,
    /// The deciding statement's place in its document (`statements[3]`,
    /// `vulnerabilities[0]`).
    pub statement: String,
    pub justification: Option<String>,
}

fn product(v: &Value) -> Result<Product, String> {
    if !v.is_object() {
        return Err("a product or subcomponent is not an object".into());
    }
    let id = v.get("@id").and_then(Value::as_str).map(String::from);
    let mut purls: Vec<Purl> = id.as_deref().and_then(|i| Purl::parse(i).ok()).into_iter().collect();
    if let Some(p) = v.pointer("/identifiers/purl").and_then(Value::as_str) {
        purls.extend(Purl::parse(p).ok());
    }
    Ok(Product { id, purls })
}

/// Load a VEX document for the SBOM `sbom` (CycloneDX VEX names its
/// components by BOM-Link). OpenVEX in go-vex v0.2 shapes (the v0.0.1
/// string forms are refused, as Trivy refuses to load them).
pub fn load(doc: &Value, source: &str, sbom: &Value) -> Result<Document, String> {
    if doc.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        return cyclonedx(doc, source, sbom);
    }
    if doc.get("@context").and_then(Value::as_str).is_none_or(str::is_empty) {
        if doc.get("vulnerabilities").is_some_and(|v| !v.is_null()) {
            return csaf(doc, source);
        }
        return Err("not a VEX document (CycloneDX, OpenVEX or CSAF)".into());
    }
    let issuer = doc.get("author").and_then(Value::as_str).map(String::from);
    let doc_ts = doc.get("timestamp").and_then(Value::as_str).and_then(timefmt::parse);
    let mut statements = Vec::new();
    for (i, s) in doc.get("statements").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let at = |why: String| format!("statements[{i}]: {why}");
        let v = s.get("vulnerability").ok_or_else(|| at("no vulnerability".into()))?;
        if !v.is_object() {
            return Err(at("vulnerability is not an object".into()));
        }
        let name = v.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let mut ids = vec![name.clone()];
        ids.extend(v.get("@id").and_then(Value::as_str).map(String::from));
        ids.extend(
            v.get("aliases")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(String::from),
        );
        ids.retain(|i| !i.is_empty());
        let mut products = Vec::new();
        for p in s.get("products").and_then(Value::as_array).into_iter().flatten() {
            let subs = p.get("subcomponents").and_then(Value::as_array).into_iter().flatten().map(product);
            products.push((product(p).map_err(at)?, subs.collect::<Result<Vec<_>, _>>().map_err(at)?));
        }
        let status = match s.get("status").and_then(Value::as_str) {
            Some("not_affected") => Status::NotAffected,
            Some("fixed") => Status::Fixed,
            Some("affected") => Status::Affected,
            Some("under_investigation") => Status::UnderInvestigation,
            other => return Err(at(format!("unknown status {other:?}"))),
        };
        statements.push(Statement {
            at: format!("statements[{i}]"),
            name,
            ids,
            products,
            status,
            justification: s.get("justification").and_then(Value::as_str).map(String::from),
            timestamp: s.get("timestamp").and_then(Value::as_str).and_then(timefmt::parse).or(doc_ts),
        });
    }
    Ok(Document { source: source.to_string(), issuer, body: Body::OpenVex(statements) })
}

fn helper_purls(v: &Value) -> Vec<Purl> {
    let h = v.get("product_identification_helper");
    let one = h.and_then(|h| h.get("purl")).and_then(Value::as_str).into_iter();
    let many = h
        .and_then(|h| h.get("purls"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    one.chain(many).filter_map(|p| Purl::parse(p).ok()).collect()
}

fn csaf(doc: &Value, source: &str) -> Result<Document, String> {
    let vulns =
        doc.get("vulnerabilities").and_then(Value::as_array).ok_or("CSAF: vulnerabilities is not a list")?;
    let mut c = Csaf::default();
    let tree = doc.get("product_tree");
    // every full product name, wherever it sits: branches (nested), the list, relationships
    let mut stack: Vec<&Value> =
        tree.and_then(|t| t.get("branches")).and_then(Value::as_array).into_iter().flatten().collect();
    let mut names: Vec<&Value> = Vec::new();
    while let Some(b) = stack.pop() {
        names.extend(b.get("product"));
        stack.extend(b.get("branches").and_then(Value::as_array).into_iter().flatten());
    }
    names.extend(
        tree.and_then(|t| t.get("full_product_names")).and_then(Value::as_array).into_iter().flatten(),
    );
    let rels: Vec<&Value> =
        tree.and_then(|t| t.get("relationships")).and_then(Value::as_array).into_iter().flatten().collect();
    names.extend(rels.iter().filter_map(|r| r.get("full_product_name")));
    for n in names {
        if let Some(id) = n.get("product_id").and_then(Value::as_str) {
            c.purls.entry(id.to_string()).or_default().extend(helper_purls(n));
        }
    }
    for r in rels {
        let cat = r.get("category").and_then(Value::as_str).unwrap_or("");
        if !matches!(cat, "default_component_of" | "installed_on" | "installed_with") {
            continue;
        }
        let s = |k: &str| r.get(k).and_then(Value::as_str).map(String::from);
        let id = r.pointer("/full_product_name/product_id").and_then(Value::as_str);
        if let (Some(id), Some(pr), Some(rt)) =
            (id, s("product_reference"), s("relates_to_product_reference"))
        {
            c.rels.entry(id.to_string()).or_default().push((pr, rt));
        }
    }
    for v in vulns {
        let ids = |k: &str| -> Vec<String> {
            let list = v.pointer(&format!("/product_status/{k}")).and_then(Value::as_array);
            list.into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
        };
        let impact = v
            .get("threats")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|t| t.get("category").and_then(Value::as_str) == Some("impact"))
            .and_then(|t| t.get("details"))
            .and_then(Value::as_str)
            .map(String::from);
        c.vulns.push(CsafVuln {
            cve: v.get("cve").and_then(Value::as_str).map(String::from),
            not_affected: ids("known_not_affected"),
            fixed: ids("fixed"),
            affected: ids("known_affected"),
            under_investigation: ids("under_investigation"),
            impact,
        });
    }
    let issuer = doc.pointer("/document/publisher/name").and_then(Value::as_str).map(String::from);
    Ok(Document { source: source.to_string(), issuer, body: Body::Csaf(c) })
}

fn cyclonedx(doc: &Value, source: &str, sbom: &Value) -> Result<Document, String> {
    if sbom.get("bomFormat").and_then(Value::as_str) != Some("CycloneDX") {
        return Err("CycloneDX VEX can be used with a CycloneDX SBOM only".into());
    }
    let serial = sbom.get("serialNumber").and_then(Value::as_str).unwrap_or("");
    let version = sbom.get("version").and_then(Value::as_u64).unwrap_or(1);
    let prefix = format!("urn:cdx:{}/{version}#", serial.strip_prefix("urn:uuid:").unwrap_or(serial));
    let mut out: Vec<CdxStatement> = Vec::new();
    for (i, v) in doc.get("vulnerabilities").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let id = v.get("id").and_then(Value::as_str).unwrap_or("").to_string();
        let status = match v.pointer("/analysis/state").and_then(Value::as_str) {
            Some("not_affected") | Some("false_positive") => Some(Status::NotAffected),
            Some("resolved") | Some("resolved_with_pedigree") => Some(Status::Fixed),
            Some("exploitable") => Some(Status::Affected),
            Some("in_triage") => Some(Status::UnderInvestigation),
            _ => None,
        };
        let refs = v
            .get("affects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("ref").and_then(Value::as_str))
            .filter_map(|r| r.strip_prefix(&prefix).map(String::from))
            .collect();
        let justification = v.pointer("/analysis/justification").and_then(Value::as_str).map(String::from);
        // the last entry of an id wins
        out.retain(|o| o.id != id);
        out.push(CdxStatement { at: format!("vulnerabilities[{i}]"), id, status, justification, refs });
    }
    let name = |p: &str| doc.pointer(p).and_then(Value::as_str).map(String::from);
    let issuer = name("/metadata/authors/0/name")
        .or_else(|| name("/metadata/manufacturer/name"))
        .or_else(|| name("/metadata/supplier/name"));
    Ok(Document { source: source.to_string(), issuer, body: Body::CycloneDx(out) })
}

/// go-vex's purl match: `stmt` names `pkg` (see the module doc).
pub fn purl_matches(stmt: &Purl, pkg: &Purl) -> bool {
    stmt.ty == pkg.ty
        && stmt.namespace == pkg.namespace
        && stmt.name == pkg.name
        && (stmt.version.is_empty() || stmt.version == pkg.version)
        && stmt.qualifiers.iter().all(|(k, v)| pkg.qualifiers.get(k) == Some(v))
        && (stmt.subpath.is_empty() || stmt.subpath == pkg.subpath)
}

fn names(p: &Product, pkg: &Package) -> bool {
    p.id.as_deref() == Some(pkg.purl.to_string().as_str())
        || p.purls.iter().any(|s| purl_matches(s, &pkg.purl))
}

impl Document {
    /// What this document says of `vuln` on `product` (asked about `sub`,
    /// or the product itself), when it suppresses.
    fn says(&self, vuln: &str, product: &Package, sub: Option<&Package>) -> Option<Decision> {
        self.says_any(vuln, product, sub, true)
    }

    /// What this document says of `vuln` on `package` itself, whatever the
    /// status (`affected` and `under_investigation` too, which Trivy
    /// ignores): what a VEX consensus reports for findings nothing suppressed.
    pub fn status_of(&self, vuln: &str, package: &Package) -> Option<Decision> {
        self.says_any(vuln, package, None, false)
    }

    fn says_any(
        &self,
        vuln: &str,
        product: &Package,
        sub: Option<&Package>,
        suppressing: bool,
    ) -> Option<Decision> {
        let decision = |status: Status, at: &str, justification: &Option<String>| Decision {
            status,
            source: self.source.clone(),
            statement: at.to_string(),
            justification: justification.clone(),
        };
        let wanted = |s: Status| !suppressing || s.suppresses();
        match &self.body {
            Body::OpenVex(statements) => Self::decide(statements, vuln, product, sub)
                .filter(|s| wanted(s.status))
                .map(|s| decision(s.status, &s.at, &s.justification)),
            Body::Csaf(c) => {
                let (k, v) = c.vulns.iter().enumerate().find(|(_, v)| v.cve.as_deref() == Some(vuln))?;
                let at = format!("vulnerabilities[{k}]");
                let named = |id: &str, p: &Package| {
                    c.purls.get(id).is_some_and(|v| v.iter().any(|q| purl_matches(q, &p.purl)))
                };
                let mut lists = vec![(Status::NotAffected, &v.not_affected), (Status::Fixed, &v.fixed)];
                if !suppressing {
                    lists.push((Status::Affected, &v.affected));
                    lists.push((Status::UnderInvestigation, &v.under_investigation));
                }
                let impact = &v.impact;
                for (status, ids) in lists {
                    for id in ids {
                        let hit = match sub {
                            None => named(id, product),
                            Some(leaf) => c.rels.get(id.as_str()).is_some_and(|rs| {
                                rs.iter().any(|(pr, rt)| named(rt, product) && named(pr, leaf))
                            }),
                        };
                        if hit {
                            return Some(decision(status, &at, impact));
                        }
                    }
                }
                None
            }
            Body::CycloneDx(statements) => {
                let s = statements.iter().find(|s| s.id == vuln)?;
                let purl = product.purl.to_string();
                let hit = s.refs.iter().any(|r| {
                    product.reference.as_deref() == Some(r.as_str())
                        || Purl::parse(r).is_ok_and(|p| p.to_string() == purl)
                });
                if hit {
                    s.status.filter(|st| wanted(*st)).map(|st| decision(st, &s.at, &s.justification))
                } else {
                    None
                }
            }
        }
    }

    /// The deciding OpenVEX statement for `vuln` on `product` (see the module doc).
    fn decide<'s>(
        statements: &'s [Statement],
        vuln: &str,
        product: &Package,
        sub: Option<&Package>,
    ) -> Option<&'s Statement> {
        let mut best: Option<&Statement> = None;
        for s in statements {
            if !s.ids.iter().any(|i| i == vuln) {
                continue;
            }
            let hit = s.products.iter().any(|(p, subs)| {
                names(p, product)
                    && match sub {
                        None => true,
                        Some(leaf) => subs.is_empty() || subs.iter().any(|q| names(q, leaf)),
                    }
            });
            // the first among equals wins: replace only on a strictly greater key
            if hit && best.is_none_or(|b| (&s.name, s.timestamp) > (&b.name, b.timestamp)) {
                best = Some(s);
            }
        }
        best
    }

    /// Whether this document suppresses `vuln` on `packages[leaf]`, given
    /// the dependency edges `(parent, child)` by package index.
    pub fn suppresses(
        &self,
        vuln: &str,
        packages: &[Package],
        edges: &[(usize, usize)],
        leaf: usize,
    ) -> Option<Decision> {
        if let Some(d) = self.says(vuln, &packages[leaf], None) {
            return Some(d);
        }
        // every path to the root must pass a node that suppresses (node, leaf)
        let mut found: Option<Decision> = None;
        let mut visited = HashSet::new();
        let blocked = self.blocked(vuln, packages, edges, leaf, leaf, &mut visited, &mut found, true);
        blocked.then(|| found.expect("a blocked path names its statement"))
    }

    #[allow(clippy::too_many_arguments)]
    fn blocked(
        &self,
        vuln: &str,
        packages: &[Package],
        edges: &[(usize, usize)],
        node: usize,
        leaf: usize,
        visited: &mut HashSet<usize>,
        found: &mut Option<Decision>,
        first: bool,
    ) -> bool {
        if !first {
            if let Some(d) = self.says(vuln, &packages[node], Some(&packages[leaf])) {
                found.get_or_insert(d);
                return true;
            }
        }
        if !visited.insert(node) {
            // a cycle: this way does not reach the root
            return true;
        }
        let parents: Vec<usize> = edges.iter().filter(|(_, c)| *c == node).map(|(p, _)| *p).collect();
        // no parent: the root is next, which no statement names
        let all = !parents.is_empty()
            && parents.iter().all(|&p| self.blocked(vuln, packages, edges, p, leaf, visited, found, false));
        visited.remove(&node);
        all
    }
}

/// The first document (in order) that suppresses `vuln` on `packages[leaf]`.
pub fn suppressed(
    docs: &[Document],
    vuln: &str,
    packages: &[Package],
    edges: &[(usize, usize)],
    leaf: usize,
) -> Option<Decision> {
    docs.iter().find_map(|d| d.suppresses(vuln, packages, edges, leaf))
}
