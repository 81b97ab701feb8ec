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
//!   path from P up to the root some node A (P included) is
//!   `not_affected`/`fixed` for (product A, subcomponent P); the decision
//!   reported is the last such statement the depth-first search met
//!   (Trivy's `reachRoot`). A node whose parents are all on the current
//!   path (a cycle) counts as reaching the root, Trivy's fail-safe; a
//!   node that is its own only parent blocks its path, as in Trivy, but
//!   with no statement met nothing is suppressed (Trivy would drop the
//!   finding with an empty status). The search visits at most
//!   [`MAX_VISITS`] nodes per finding (past that: not suppressed).
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
    p.id.as_deref() == Some(pkg.canonical.as_str()) || p.purls.iter().any(|s| purl_matches(s, &pkg.purl))
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
                let purl = &product.canonical;
                let hit = s.refs.iter().any(|r| {
                    product.reference.as_deref() == Some(r.as_str())
                        || Purl::parse(r).is_ok_and(|p| &p.to_string() == purl)
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
    /// the SBOM's dependency graph.
    pub fn suppresses(
        &self,
        vuln: &str,
        packages: &[Package],
        graph: &Graph,
        leaf: usize,
    ) -> Option<Decision> {
        if let Some(d) = self.says(vuln, &packages[leaf], None) {
            return Some(d);
        }
        let mut walk = Walk { last: None, path: Vec::new(), budget: MAX_VISITS };
        if self.reaches_root(vuln, packages, graph, leaf, leaf, &mut walk) {
            None
        } else {
            walk.last
        }
    }

    /// Trivy's `reachRoot` depth-first search (module doc): false when
    /// every way up from `node` is blocked by a statement naming (an
    /// ancestor, `leaf`); `walk.last` is the last such statement met.
    fn reaches_root(
        &self,
        vuln: &str,
        packages: &[Package],
        graph: &Graph,
        node: usize,
        leaf: usize,
        walk: &mut Walk,
    ) -> bool {
        if walk.budget == 0 {
            return true; // too many ways up: fail safe, as for a broken graph
        }
        walk.budget -= 1;
        if let Some(d) = self.says(vuln, &packages[node], Some(&packages[leaf])) {
            walk.last = Some(d);
            return false;
        }
        let parents = &graph.parents[node];
        // no parent (the root is next) or every parent already on this path
        if parents.iter().all(|p| walk.path.contains(p)) {
            return true;
        }
        walk.path.push(node);
        let mut reached = false;
        for &p in parents {
            if walk.path.contains(&p) {
                continue;
            }
            if self.reaches_root(vuln, packages, graph, p, leaf, walk) {
                reached = true;
                break;
            }
        }
        walk.path.pop();
        reached
    }
}

/// The most nodes one search up the graph visits ([`Document::suppresses`]):
/// a dense dependency graph has exponentially many paths; past this many
/// the finding counts as reaching the root (not suppressed), so time stays
/// bounded whatever the SBOM.
pub const MAX_VISITS: usize = 100_000;

struct Walk {
    last: Option<Decision>,
    /// The nodes of the current path (Trivy's per-path visited set).
    path: Vec<usize>,
    budget: usize,
}

/// An SBOM's dependency graph: each package's parents, in edge order.
pub struct Graph {
    parents: Vec<Vec<usize>>,
}

impl Graph {
    /// The graph of `n` packages with edges `(parent, child)` by index.
    pub fn new(n: usize, edges: &[(usize, usize)]) -> Graph {
        let mut parents = vec![Vec::new(); n];
        for &(p, c) in edges {
            if c < n && p < n {
                parents[c].push(p);
            }
        }
        Graph { parents }
    }
}

/// The first document (in order) that suppresses `vuln` on `packages[leaf]`.
pub fn suppressed<'a>(
    docs: impl IntoIterator<Item = &'a Document>,
    vuln: &str,
    packages: &[Package],
    graph: &Graph,
    leaf: usize,
) -> Option<Decision> {
    docs.into_iter().find_map(|d| d.suppresses(vuln, packages, graph, leaf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sbom() -> (Value, Vec<Package>) {
        let c = |r: &str, p: &str| json!({"type": "library", "name": r, "bom-ref": r, "purl": p});
        let doc = json!({"bomFormat": "CycloneDX", "components": [
            c("a", "pkg:npm/a@1.0.0"), c("b", "pkg:npm/b@1.0.0"), c("c", "pkg:npm/c@1.0.0")]});
        let packages = crate::policy::sbom::packages(&doc).unwrap();
        (doc, packages)
    }

    fn openvex(product: &str, sub: &str) -> Document {
        let doc = json!({"@context": "https://openvex.dev/ns/v0.2.0", "author": "x", "statements": [{
            "vulnerability": {"name": "CVE-1"}, "status": "not_affected",
            "justification": "component_not_present",
            "products": [{"@id": product, "subcomponents": [{"@id": sub}]}]}]});
        load(&doc, "v.json", &Value::Null).unwrap()
    }

    #[test]
    fn cycles_count_as_reaching_the_root_and_never_panic() {
        let (_, p) = sbom();
        let (a, b, c) = (0, 1, 2);
        // a <- b <- c <- b (b and c in a cycle above a): no statement names b or c
        let g = Graph::new(3, &[(b, a), (c, b), (b, c)]);
        let unrelated = openvex("pkg:npm/zzz", "pkg:npm/a@1.0.0");
        assert_eq!(unrelated.suppresses("CVE-1", &p, &g, a), None);
        // b says a is not affected: every way up from a passes b
        let by_b = openvex("pkg:npm/b@1.0.0", "pkg:npm/a@1.0.0");
        let d = by_b.suppresses("CVE-1", &p, &g, a).expect("suppressed through b");
        assert_eq!((d.status, d.statement.as_str()), (Status::NotAffected, "statements[0]"));
        // c covers a too: the only way up from a passes b, then c
        let by_c = openvex("pkg:npm/c@1.0.0", "pkg:npm/a@1.0.0");
        assert!(by_c.suppresses("CVE-1", &p, &g, a).is_some());
        // a second way up, a <- c <- a, ends in a node whose parents are all on
        // the path: Trivy's fail-safe counts it as reaching the root
        let g2 = Graph::new(3, &[(b, a), (c, a), (a, c)]);
        assert_eq!(by_b.suppresses("CVE-1", &p, &g2, a), None);
    }

    #[test]
    fn a_dense_graph_stays_within_the_visit_budget() {
        // 40 layers of 2 nodes, every node a parent of both below: 2^40 paths
        let n = 80;
        let comps: Vec<Value> = (0..n)
            .map(|i| json!({"type": "library", "name": format!("p{i}"), "bom-ref": format!("p{i}"), "purl": format!("pkg:npm/p{i}@1.0.0")}))
            .collect();
        let p =
            crate::policy::sbom::packages(&json!({"bomFormat": "CycloneDX", "components": comps})).unwrap();
        let mut edges = Vec::new();
        for l in 0..39 {
            for x in 0..2 {
                for y in 0..2 {
                    edges.push((2 * (l + 1) + x, 2 * l + y));
                }
            }
        }
        let g = Graph::new(n, &edges);
        // both top nodes block: every one of the 2^39 paths must be walked to
        // know, so the search gives up (not suppressed) instead of hanging
        let doc = json!({"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{
            "vulnerability": {"name": "CVE-1"}, "status": "not_affected",
            "products": [{"@id": "pkg:npm/p78@1.0.0"}, {"@id": "pkg:npm/p79@1.0.0"}]}]});
        let doc = load(&doc, "v.json", &Value::Null).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(doc.suppresses("CVE-1", &p, &g, 0), None);
        assert!(started.elapsed().as_secs() < 20, "bounded by MAX_VISITS");
    }
}
