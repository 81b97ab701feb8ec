//! `policy-evaluate` v1: one SBOM shard's findings, VEX consensus and
//! verdicts.
//!
//! Inputs: `sboms` (the shard's SBOMs, from `policy-facts`), `rows` (its
//! `policy-slice`), `vex` (every shard's `policy-facts` VEX documents).
//! Parameters: `source`, `type`, `inputs` (the profile's input names, in
//! its order: the order VEX documents are tried in), `policy` (the policy
//! snapshot, `crate::policy::config`), `epoch` (the pinned time waivers
//! are checked against). Outputs (JSONL, empty for shards that are not
//! SBOMs): `evaluations`, one line per (SBOM, component, vulnerability)
//! whose installed version Trivy finds vulnerable; `consensus`, one line
//! per such finding some VEX statement speaks of; `summary`, one line per SBOM.
//!
//! How a finding is decided (README "Policy verdicts"):
//! - **Matching** is Trivy's (`crate::policy::matcher`) on the packages
//!   `trivy sbom` reads (`crate::policy::sbom`); two components with the
//!   same name, version and purl give one finding.
//! - **VEX**: the documents whose issuer the policy trusts, ordered by
//!   `vex.precedence` then the inputs' order, applied as Trivy applies
//!   `--vex` (`crate::policy::vex`): the first that says `not_affected` or
//!   `fixed` decides. Otherwise the first trusted document that speaks of
//!   the package itself (`affected`, `under_investigation`) gives the
//!   status, which does not suppress; with none, `affected`. CycloneDX VEX
//!   applies to CycloneDX SBOMs only (Trivy refuses it with SPDX).
//! - **Verdict** (`Compiled::decide`): a denied package fails; a VEX
//!   suppression passes; an unexpired waiver passes; an allowed package
//!   passes; else the severity thresholds. `reasons[]` says which applied.
//!
//! Subjects and VEX sources are named `<source>/<path inside it>`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};

use serde_json::{json, Value};

use super::keys::lookup_key;
use crate::actions::{Action, ActionCx, ActionError};
use crate::canon;
use crate::policy::config::{Compiled, Policy, Verdict};
use crate::policy::matcher::{self, Index};
use crate::policy::sbom::{self, Package};
use crate::policy::vex::{self, Decision, Document, Status};

#[derive(Debug)]
pub struct PolicyEvaluate;

/// A VEX document of the inputs, loaded once (CycloneDX VEX is loaded per
/// SBOM: it names components by the SBOM's serial number).
struct Vex {
    source: String,
    issuer: Option<String>,
    trusted: bool,
    loaded: Option<Document>,
    cyclonedx: Option<Value>,
}

fn read_vex(cx: &ActionCx<'_>, policy: &Compiled) -> Result<Vec<Vex>, ActionError> {
    let mut out = Vec::new();
    // documents come gathered by source name; the inputs' order is the profile's
    let inputs: Vec<&str> = cx
        .params
        .get("inputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let rank =
        |source: &str| inputs.iter().position(|i| source.split_once('/').is_some_and(|(s, _)| s == *i));
    for blob in cx.blobs("vex") {
        let bytes = cx.cache.read(&blob)?;
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: Value =
                serde_json::from_slice(line).map_err(|e| ActionError::Failed(format!("vex: {e}")))?;
            let source = v["source"].as_str().unwrap_or_default().to_string();
            let doc = &v["document"];
            let (loaded, cyclonedx) = if doc.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
                (None, Some(doc.clone()))
            } else {
                let d = vex::load(doc, &source, &Value::Null)
                    .map_err(|e| ActionError::Failed(format!("{source}: {e}")))?;
                (Some(d), None)
            };
            let issuer = match (&loaded, &cyclonedx) {
                (Some(d), _) => d.issuer.clone(),
                (None, Some(c)) => {
                    vex::load(c, &source, &json!({"bomFormat": "CycloneDX"})).ok().and_then(|d| d.issuer)
                }
                _ => None,
            };
            let trusted = policy.trusts(issuer.as_deref());
            out.push(Vex { source, issuer, trusted, loaded, cyclonedx });
        }
    }
    // precedence first, then the inputs' order (stable: a source's documents keep their order)
    out.sort_by_key(|v| (policy.precedence(v.issuer.as_deref()), rank(&v.source)));
    Ok(out)
}

fn decision_json(d: &Decision) -> Value {
    json!({"source": d.source, "statement": d.statement, "status": d.status.as_str(), "justification": d.justification})
}

/// Dependency edges by package index (a reference names its first package).
fn edge_indices(packages: &[Package], edges: &[(String, String)]) -> Vec<(usize, usize)> {
    let mut by_ref: HashMap<&str, usize> = HashMap::new();
    for (i, p) in packages.iter().enumerate() {
        if let Some(r) = &p.reference {
            by_ref.entry(r.as_str()).or_insert(i);
        }
    }
    edges.iter().filter_map(|(a, b)| Some((*by_ref.get(a.as_str())?, *by_ref.get(b.as_str())?))).collect()
}

/// zstd level of the per-shard evaluation and consensus frames (fast:
/// they are rewritten whenever a finding of the shard changes).
pub const LEVEL: i32 = 3;

type Frame = zstd::stream::write::Encoder<'static, std::io::BufWriter<std::fs::File>>;

struct Out {
    evaluations: Frame,
    consensus: Frame,
    summary: Vec<u8>,
}

fn frame(path: &std::path::Path) -> Result<Frame, ActionError> {
    let f = std::fs::File::create(path).map_err(|e| ActionError::io(path, e))?;
    let mut z = zstd::stream::write::Encoder::new(std::io::BufWriter::new(f), LEVEL)
        .map_err(|e| ActionError::io(path, e))?;
    z.include_checksum(true).map_err(|e| ActionError::io(path, e))?;
    Ok(z)
}

/// Matches by (bucket prefix, lookup name, version), within one step.
type Memo = HashMap<(&'static str, String, String), (Vec<matcher::Match>, Vec<String>)>;

fn line(out: &mut impl Write, v: &Value) -> Result<(), String> {
    let mut b = canon::to_vec(v);
    b.push(b'\n');
    out.write_all(&b).map_err(|e| e.to_string())
}

#[allow(clippy::too_many_arguments)]
fn evaluate_sbom(
    subject: &str,
    doc: &Value,
    index: &Index,
    vexes: &[Vex],
    policy: &Compiled,
    now: i64,
    memo: &mut Memo,
    out: &mut Out,
) -> Result<(), String> {
    let packages = sbom::packages(doc)?;
    let graph = vex::Graph::new(packages.len(), &edge_indices(&packages, &sbom::edges(doc)));
    let is_cdx = doc.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX");
    // this SBOM's documents: CycloneDX VEX loaded against it, and only for a CycloneDX SBOM
    let mut own: Vec<Option<Document>> = Vec::with_capacity(vexes.len());
    for v in vexes {
        own.push(match &v.cyclonedx {
            Some(c) if is_cdx => Some(vex::load(c, &v.source, doc)?),
            _ => None,
        });
    }
    let docs: Vec<(&Vex, &Document)> =
        vexes.iter().zip(&own).filter_map(|(v, o)| Some((v, v.loaded.as_ref().or(o.as_ref())?))).collect();
    let mut seen = HashSet::new();
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut severities: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut findings, mut suppressed, mut waived, mut scanned, mut consensus) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut warnings = Vec::new();
    let mut denied = Vec::new();
    let mut worst = Verdict::Pass;
    for (i, p) in packages.iter().enumerate() {
        let purl = p.canonical.clone();
        if let Some(g) = policy.denied(&purl) {
            denied.push(json!({"purl": purl, "deny": g}));
            worst = Verdict::Fail;
        }
        let Some((prefix, name)) = lookup_key(p) else { continue };
        scanned += 1;
        // a package recurs across the shard's SBOMs: matched once per step
        let key = (prefix, name, p.version.clone());
        if !memo.contains_key(&key) {
            let found = matcher::matches(index, prefix, &key.1, &p.version);
            memo.insert(key.clone(), found);
        }
        let (matches, warned) = memo[&key].clone();
        warnings.extend(warned);
        for m in matches {
            if !seen.insert((p.name.clone(), p.version.clone(), purl.clone(), m.vuln.clone())) {
                continue;
            }
            findings += 1;
            // each document once: what it suppresses (Trivy's `--vex`), else what it says of the package
            let mut sup: Option<Decision> = None;
            let mut statements = Vec::new();
            let mut spoken: Option<Decision> = None;
            for (v, d) in &docs {
                let said = d.suppresses(&m.vuln, &packages, &graph, i).or_else(|| d.status_of(&m.vuln, p));
                if let Some(s) = said {
                    if v.trusted && s.status.suppresses() && sup.is_none() {
                        sup = Some(s.clone());
                    }
                    if v.trusted && spoken.is_none() && !s.status.suppresses() {
                        spoken = Some(s.clone());
                    }
                    let mut j = decision_json(&s);
                    j["issuer"] = json!(v.issuer);
                    j["trusted"] = json!(v.trusted);
                    statements.push(j);
                }
            }
            let decided = sup.clone().or(spoken);
            let status = decided.as_ref().map_or(Status::Affected, |d| d.status);
            let mut reasons = Vec::new();
            for s in &statements {
                if s["trusted"] == false && (s["status"] == "not_affected" || s["status"] == "fixed") {
                    reasons.push(format!(
                        "VEX {} from {} (issuer {}) ignored: the issuer is not trusted (vex.trust)",
                        s["status"].as_str().unwrap_or_default(),
                        s["source"].as_str().unwrap_or_default(),
                        s["issuer"].as_str().unwrap_or("none")
                    ));
                }
            }
            let why = sup.as_ref().map(|d| {
                format!(
                    "VEX {}{} by {} {}",
                    d.status.as_str(),
                    d.justification.as_ref().map(|j| format!(" ({j})")).unwrap_or_default(),
                    d.source,
                    d.statement
                )
            });
            if sup.is_some() {
                suppressed += 1;
            } else if let Some(d) = &decided {
                reasons.push(format!(
                    "VEX {} by {} {} (does not suppress)",
                    d.status.as_str(),
                    d.source,
                    d.statement
                ));
            }
            let mut ids: Vec<&str> = vec![m.vuln.as_str()];
            ids.extend(m.vendor_ids.iter().map(String::as_str));
            let decision = policy.decide(&purl, &ids, m.severity, why, now);
            if decision.reasons.iter().any(|r| r.starts_with("waived")) {
                waived += 1;
            }
            reasons.extend(decision.reasons);
            worst = worst.max(decision.verdict);
            *counts.entry(decision.verdict.as_str()).or_default() += 1;
            *severities.entry(m.severity).or_default() += 1;
            let aliases: Vec<&String> = m.vendor_ids.iter().filter(|a| **a != m.vuln).collect();
            line(
                &mut out.evaluations,
                &json!({
                    "subject": subject,
                    "purl": purl,
                    "vulnerability": m.vuln,
                    "aliases": aliases,
                    "advisory": m.vendor_ids.first().unwrap_or(&m.vuln),
                    "dataSource": m.data_source,
                    "installed": p.version,
                    "fixed": m.fixed,
                    "severity": m.severity,
                    "vexStatus": status.as_str(),
                    "vexSource": decided.as_ref().map(|d| d.source.clone()),
                    "vexStatement": decided.as_ref().map(|d| d.statement.clone()),
                    "verdict": decision.verdict.as_str(),
                    "reasons": reasons,
                }),
            )?;
            if !statements.is_empty() {
                consensus += 1;
                line(
                    &mut out.consensus,
                    &json!({
                        "subject": subject,
                        "vulnerability": m.vuln,
                        "product": purl,
                        "status": status.as_str(),
                        "justification": decided.as_ref().and_then(|d| d.justification.clone()),
                        "decidedBy": decided.as_ref().map(decision_json),
                        "statements": statements,
                    }),
                )?;
            }
        }
    }
    line(
        &mut out.summary,
        &json!({
            "subject": subject,
            "format": if is_cdx { "cyclonedx" } else { "spdx" },
            "components": packages.len(),
            "scanned": scanned,
            "findings": findings,
            "vexConsensus": consensus,
            "suppressed": suppressed,
            "waived": waived,
            "verdicts": counts,
            "severities": severities,
            "denied": denied,
            "verdict": worst.as_str(),
            "warnings": warnings,
        }),
    )?;
    Ok(())
}

impl Action for PolicyEvaluate {
    fn id(&self) -> &'static str {
        "policy-evaluate"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["sboms", "rows", "vex"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["source", "type", "inputs", "policy", "epoch"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/actions/mod.rs",
            "src/actions/parse.rs",
            "src/canon.rs",
            "src/digest.rs",
            "src/timefmt.rs",
            "src/kinds/json_policy/keys.rs",
            "src/formats/manifest.rs",
            "src/formats/bbolt.rs",
            "src/shown.rs",
            "src/adapters/",
            "src/select.rs",
            "src/kinds/trivy_db/model/",
            "src/versions.rs",
            "src/versions/",
            "src/policy/",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["evaluations", "consensus", "summary"]
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let sboms_type = cx.param_str("type")? == "sboms";
        let mut out = Out {
            evaluations: frame(&cx.out.join("evaluations"))?,
            consensus: frame(&cx.out.join("consensus"))?,
            summary: Vec::new(),
        };
        if sboms_type {
            let policy = Policy::from_snapshot(&cx.params["policy"])
                .and_then(Compiled::new)
                .map_err(ActionError::Failed)?;
            let now = cx.param_i64("epoch")?;
            let source = cx.param_str("source")?;
            let mut index = Index::default();
            if let Some(rows) = cx.blobs("rows").first() {
                let bytes = cx.cache.read(rows)?;
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| ActionError::Failed("slice: not UTF-8".into()))?;
                for l in text.lines() {
                    index.add(l).map_err(ActionError::Failed)?;
                }
            }
            let vexes = read_vex(cx, &policy)?;
            let mut memo = Memo::new();
            let failed = |e: std::io::Error| ActionError::Failed(format!("sboms blob: {e}"));
            let blob = cx
                .blobs("sboms")
                .first()
                .copied()
                .ok_or_else(|| ActionError::Failed("no sboms input".into()))?;
            cx.cache.copy_to(&blob, &mut std::io::sink())?;
            let decoder = zstd::stream::read::Decoder::new(cx.cache.reader(&blob)?).map_err(failed)?;
            let mut sboms = std::io::BufReader::with_capacity(1 << 16, decoder);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                if sboms.read_until(b'\n', &mut buf).map_err(failed)? == 0 {
                    break;
                }
                let mut held = crate::actions::MEMORY.acquire(crate::adapters::estimate_memory(&buf));
                held.trim_on_release();
                let record: Value =
                    serde_json::from_slice(&buf).map_err(|e| ActionError::Failed(format!("sboms: {e}")))?;
                let doc = &record["document"];
                let subject = format!("{source}/{}", record["path"].as_str().unwrap_or_default());
                evaluate_sbom(&subject, doc, &index, &vexes, &policy, now, &mut memo, &mut out)
                    .map_err(|e| ActionError::Failed(format!("{subject}: {e}")))?;
            }
        }
        // shards holding no SBOM write empty outputs, not empty frames
        for (name, z, written) in
            [("evaluations", out.evaluations, sboms_type), ("consensus", out.consensus, sboms_type)]
        {
            let p = cx.out.join(name);
            let mut w = z.finish().map_err(|e| ActionError::io(&p, e))?;
            w.flush().map_err(|e| ActionError::io(&p, e))?;
            drop(w);
            if !written {
                std::fs::write(&p, b"").map_err(|e| ActionError::io(&p, e))?;
            }
        }
        cx.write("summary", &out.summary)?;
        Ok(())
    }
}
