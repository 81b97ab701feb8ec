//! VEX applied to findings as Trivy 0.76.0's `trivy sbom --vex` applies it
//! (docs/research/json-policy-trivy.md §3), so json:policy suppresses
//! exactly what Trivy suppresses. OpenVEX so far; CSAF and CycloneDX VEX
//! are not read yet ([`load`] refuses them, naming the format).
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
    /// `vulnerability.name`, the precedence key.
    name: String,
    /// name, `@id` and aliases.
    ids: Vec<String>,
    products: Vec<(Product, Vec<Product>)>,
    status: Status,
    justification: Option<String>,
    timestamp: Option<timefmt::Instant>,
}

/// One loaded VEX document.
#[derive(Clone, Debug)]
pub struct Document {
    /// What it is called in reports (the path given).
    pub source: String,
    statements: Vec<Statement>,
}

/// What decided a suppressed finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub status: Status,
    pub source: String,
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

/// Load an OpenVEX document (go-vex v0.2 shapes; the v0.0.1 string forms
/// and other VEX formats are refused, as Trivy refuses to load them).
pub fn load(doc: &Value, source: &str) -> Result<Document, String> {
    if doc.get("bomFormat").is_some() {
        return Err("CycloneDX VEX is not read yet (OpenVEX only)".into());
    }
    if doc.get("@context").and_then(Value::as_str).is_none_or(str::is_empty) {
        if doc.get("vulnerabilities").is_some() {
            return Err("CSAF VEX is not read yet (OpenVEX only)".into());
        }
        return Err("not an OpenVEX document (no @context)".into());
    }
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
            name,
            ids,
            products,
            status,
            justification: s.get("justification").and_then(Value::as_str).map(String::from),
            timestamp: s.get("timestamp").and_then(Value::as_str).and_then(timefmt::parse).or(doc_ts),
        });
    }
    Ok(Document { source: source.to_string(), statements })
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
    /// The deciding statement of this document for `vuln` on `product`
    /// (asked about `sub`, or the product itself).
    fn decide(&self, vuln: &str, product: &Package, sub: Option<&Package>) -> Option<&Statement> {
        let mut best: Option<&Statement> = None;
        for s in &self.statements {
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
        let decision = |s: &Statement| Decision {
            status: s.status,
            source: self.source.clone(),
            justification: s.justification.clone(),
        };
        if let Some(s) = self.decide(vuln, &packages[leaf], None).filter(|s| s.status.suppresses()) {
            return Some(decision(s));
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
            if let Some(s) =
                self.decide(vuln, &packages[node], Some(&packages[leaf])).filter(|s| s.status.suppresses())
            {
                found.get_or_insert(Decision {
                    status: s.status,
                    source: self.source.clone(),
                    justification: s.justification.clone(),
                });
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
