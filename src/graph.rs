//! The step graph: profiles expanded through their rules over the sources'
//! shards into a petgraph DAG.
//!
//! Owns expansion (pure: workspace + rules + snapshots in, graph out) and
//! the `graph` command's renderings. Identical work is one node: a shared
//! step (`parse` of a shard) read by two profiles appears once. Node order
//! is deterministic (profiles, then rule order, then source and shard).

use std::collections::{BTreeMap, HashMap};

use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::{json, Value};

use crate::actions::Action;
use crate::kinds;
use crate::profile::{ProfileDef, Workspace};
use crate::rules::{ForEach, InputSpec, Rule, Var};
use crate::signing::PublicKey;
use crate::sources::Snapshot;

/// Where a step input comes from.
#[derive(Clone, Debug)]
pub enum Input {
    Shard { source: String, index: u32 },
    Output { node: NodeIndex, output: String },
}

#[derive(Clone, Debug)]
pub struct Step {
    pub id: String,
    pub action: &'static dyn Action,
    pub params: Value,
    /// top-level parameter → the rule variables its template names
    /// (`level` ← `profile.compression-level`), so reasons speak profile keys
    pub param_vars: BTreeMap<String, Vec<String>>,
    /// input group name → its inputs (one for paired inputs, many for gathers)
    pub inputs: BTreeMap<String, Vec<Input>>,
    /// The profiles whose export this step feeds, and the bundle step of each profile.
    pub profiles: Vec<String>,
}

pub struct StepGraph {
    pub g: DiGraph<Step, ()>,
    /// profile → its publishing steps, in rule order (the last is the
    /// profile's final step); their published outputs are `out/<profile>/`.
    pub finals: BTreeMap<String, Vec<NodeIndex>>,
}

#[derive(Debug, thiserror::Error)]
#[error("profile {profile}: {message}")]
pub struct GraphError {
    pub profile: String,
    pub message: String,
}

/// The `{export.*}` values of each profile, read from `out/` before
/// expansion (the only variables not of the workspace or the sources).
#[derive(Debug, Default)]
pub struct ExportVars {
    pub previous: BTreeMap<String, Value>,
    pub derived: BTreeMap<String, Value>,
    /// Kind option values with their key files resolved to public keys
    /// (by profile), used instead of the values as written.
    pub options: BTreeMap<String, BTreeMap<&'static str, Value>>,
}

/// The values a profile gives the rule variables.
struct ProfileVars<'a> {
    p: &'a ProfileDef,
    ws: &'a Workspace,
    rule: &'a Rule,
    sources: Value,
    signing: Value,
    options: BTreeMap<&'static str, Value>,
    previous: Value,
    derived: Value,
}

/// The shard an instance of a per-shard step reads.
struct ShardVars<'a> {
    source: &'a str,
    index: u32,
    snap: &'a Snapshot,
}

/// The value of a rule variable: every [`Var`] has one here (`None` only
/// for a shard's variable outside a shard, which rules refuse to load).
fn value(v: Var, pv: &ProfileVars<'_>, shard: Option<&ShardVars<'_>>) -> Option<Value> {
    let p = pv.p;
    Some(match v {
        Var::ProfileName => json!(p.name),
        Var::ProfileKind => json!(p.kind),
        Var::ProfileSelect => p.select.to_json(),
        Var::ProfileSources => pv.sources.clone(),
        Var::ProfileInputs => json!(p.inputs),
        Var::ProfileSigning => pv.signing.clone(),
        Var::ProfileOption(key) => pv.options.get(key)?.clone(),
        Var::WorkspaceSourceDateEpoch => json!(pv.ws.source_date_epoch),
        Var::ExportPrevious => pv.previous.clone(),
        Var::ExportDerived => pv.derived.clone(),
        Var::ToolVersion => json!(env!("CARGO_PKG_VERSION")),
        Var::RuleVersion => json!(pv.rule.version),
        Var::RuleActions => Value::Object(
            pv.rule.steps.iter().map(|t| (t.action.id().to_string(), json!(t.action.version()))).collect(),
        ),
        Var::RulePath => json!(pv.rule.shown),
        Var::RuleSha256 => json!(pv.rule.sha256.hex()),
        Var::ShardSource => json!(shard?.source),
        Var::ShardIndex => json!(pad(shard?.index)),
        Var::ShardFormat => json!(shard?.snap.def.format.as_str()),
        Var::ShardType => json!(shard?.snap.def.format.record_type().as_str()),
        Var::ShardPath => json!(shard?.snap.def.declared_path),
        Var::ShardOrigin => json!(match shard?.snap.origin {
            crate::sources::Origin::Dir(_) => "dir",
            crate::sources::Origin::Archive => "archive",
        }),
        Var::ShardDataSource => serde_json::to_value(&shard?.snap.def.data_source).ok()?,
    })
}

fn pad(index: u32) -> String {
    format!("{index:04}")
}

pub fn expand(
    ws: &Workspace,
    profiles: &[&ProfileDef],
    rules: &BTreeMap<String, Rule>,
    snaps: &BTreeMap<String, Snapshot>,
    signing: &BTreeMap<String, PublicKey>,
    exports: &ExportVars,
) -> Result<StepGraph, GraphError> {
    let mut g: DiGraph<Step, ()> = DiGraph::new();
    let mut interned: HashMap<String, NodeIndex> = HashMap::new();
    let mut finals = BTreeMap::new();
    for p in profiles {
        let rule = rules.get(&p.kind).ok_or_else(|| GraphError {
            profile: p.name.clone(),
            message: format!("no rule for kind {:?}", p.kind),
        })?;
        let kind = kinds::lookup(&p.kind).ok_or_else(|| GraphError {
            profile: p.name.clone(),
            message: format!("unknown kind {:?}", p.kind),
        })?;
        let options = match exports.options.get(&p.name) {
            Some(o) => Ok(o.clone()),
            None => kinds::option_values(kind, p, &ws.root),
        };
        let options = options.map_err(|(at, key, message)| GraphError {
            profile: p.name.clone(),
            message: format!("{}:{}: {key}: {message}", ws.file.display(), at.line),
        })?;
        let sources: Vec<Value> = p
            .inputs
            .iter()
            .map(|s| {
                let snap = &snaps[s];
                json!({"name": s, "format": snap.def.format.as_str(), "path": snap.def.declared_path,
                       "sha256": snap.tree.hex(), "documents": snap.documents})
            })
            .collect();
        if signing.contains_key(&p.name) && !rule.steps.iter().any(|t| t.action.id() == "seal-export") {
            return Err(GraphError {
                profile: p.name.clone(),
                message: format!(
                    "signing is on, but rule {} has no seal-export step: it would publish unsigned",
                    rule.path.display()
                ),
            });
        }
        let pv = ProfileVars {
            p,
            ws,
            rule,
            sources: Value::Array(sources),
            signing: signing.get(&p.name).map_or(Value::Null, |k| k.describe()),
            options,
            previous: exports.previous.get(&p.name).cloned().unwrap_or(Value::Null),
            derived: exports.derived.get(&p.name).cloned().unwrap_or(Value::Null),
        };
        // template name → instances: (source, shard index) → node
        let mut made: BTreeMap<&str, BTreeMap<(String, u32), NodeIndex>> = BTreeMap::new();
        for t in &rule.steps {
            let mut instances: Vec<Option<ShardVars<'_>>> = Vec::new();
            match t.for_each {
                ForEach::Profile => instances.push(None),
                ForEach::Shard => {
                    for s in &p.inputs {
                        let snap = &snaps[s];
                        for sh in &snap.shards {
                            instances.push(Some(ShardVars { source: s, index: sh.index, snap }));
                        }
                    }
                }
            }
            for sv in instances {
                let shard = sv.as_ref().map(|v| (v.source.to_string(), v.index));
                let params =
                    t.params.instantiate(&|v| value(v, &pv, sv.as_ref())).map_err(|v| GraphError {
                        profile: p.name.clone(),
                        message: format!("step {}: variable {v} has no value here", t.name),
                    })?;
                let mut inputs: BTreeMap<String, Vec<Input>> = BTreeMap::new();
                for (name, spec) in &t.inputs {
                    let list = match spec {
                        InputSpec::Shard => {
                            let (s, i) = shard.clone().expect("validated: shard input on a shard step");
                            vec![Input::Shard { source: s, index: i }]
                        }
                        InputSpec::Same { step, output } => {
                            // per-profile steps are made under the default key
                            let node = made[step.as_str()][&shard.clone().unwrap_or_default()];
                            vec![Input::Output { node, output: output.clone() }]
                        }
                        // a source with no documents has no shard steps: gather nothing
                        InputSpec::All { step, output } => made
                            .get(step.as_str())
                            .into_iter()
                            .flat_map(|m| m.values())
                            .map(|&node| Input::Output { node, output: output.clone() })
                            .collect(),
                    };
                    inputs.insert(name.clone(), list);
                }
                let id = match (&shard, t.shared) {
                    (Some((s, i)), true) => format!("{}:{s}/{}", t.name, pad(*i)),
                    (Some((s, i)), false) => format!("{}:{}/{s}/{}", t.name, p.name, pad(*i)),
                    (None, _) => format!("{}:{}", t.name, p.name),
                };
                let identity = format!(
                    "{}\0{}\0{}",
                    t.action.id(),
                    String::from_utf8_lossy(&crate::canon::to_vec(&params)),
                    inputs_sig(&inputs)
                );
                let node = match interned.get(&identity) {
                    Some(&n) => {
                        if !g[n].profiles.contains(&p.name) {
                            g[n].profiles.push(p.name.clone());
                        }
                        n
                    }
                    None => {
                        let n = g.add_node(Step {
                            id,
                            action: t.action,
                            params,
                            param_vars: vars_by_param(&t.params),
                            inputs: inputs.clone(),
                            profiles: vec![p.name.clone()],
                        });
                        for list in inputs.values() {
                            for i in list {
                                if let Input::Output { node, .. } = i {
                                    if !g.contains_edge(*node, n) {
                                        g.add_edge(*node, n, ());
                                    }
                                }
                            }
                        }
                        interned.insert(identity, n);
                        n
                    }
                };
                made.entry(t.name.as_str()).or_default().insert(shard.clone().unwrap_or_default(), node);
                if t.for_each == ForEach::Profile && t.action.publishes() {
                    finals.entry(p.name.clone()).or_insert_with(Vec::new).push(node);
                }
            }
        }
    }
    Ok(StepGraph { g, finals })
}

/// Each top-level parameter of a template → the `{variables}` in it.
/// The variables feeding each top-level parameter of a step template
/// (how a reason names the profile key behind a changed parameter).
fn vars_by_param(template: &crate::rules::Param) -> BTreeMap<String, Vec<String>> {
    match template {
        crate::rules::Param::Map(m) => m.iter().map(|(k, p)| (k.clone(), p.vars())).collect(),
        _ => BTreeMap::new(),
    }
}

fn inputs_sig(inputs: &BTreeMap<String, Vec<Input>>) -> String {
    let mut s = String::new();
    for (k, list) in inputs {
        s.push_str(k);
        for i in list {
            match i {
                Input::Shard { source, index } => s.push_str(&format!("|s:{source}/{index}")),
                Input::Output { node, output } => s.push_str(&format!("|n:{}.{output}", node.index())),
            }
        }
        s.push(';');
    }
    s
}

impl StepGraph {
    pub fn to_json(&self) -> Value {
        let steps: Vec<Value> = self
            .g
            .node_indices()
            .map(|n| {
                let s = &self.g[n];
                let inputs: BTreeMap<&String, Vec<String>> = s
                    .inputs
                    .iter()
                    .map(|(k, list)| {
                        (
                            k,
                            list.iter()
                                .map(|i| match i {
                                    Input::Shard { source, index } => {
                                        format!("source:{source}/{}", pad(*index))
                                    }
                                    Input::Output { node, output } => {
                                        format!("{}.{output}", self.g[*node].id)
                                    }
                                })
                                .collect(),
                        )
                    })
                    .collect();
                json!({"id": s.id, "action": s.action.id(), "version": s.action.version(),
                       "params": s.params, "inputs": inputs, "profiles": s.profiles})
            })
            .collect();
        json!({"steps": steps, "finals": self.finals.iter().map(|(p, n)| (p.clone(), json!(n.iter().map(|n| &self.g[*n].id).collect::<Vec<_>>()))).collect::<serde_json::Map<_,_>>()})
    }

    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph export_center {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        let mut sources = std::collections::BTreeSet::new();
        for n in self.g.node_indices() {
            let s = &self.g[n];
            out.push_str(&format!(
                "  \"{}\" [label=\"{}\\n{}@{}\"];\n",
                s.id,
                s.id,
                s.action.id(),
                s.action.version()
            ));
            for list in s.inputs.values() {
                for i in list {
                    match i {
                        Input::Shard { source, index } => {
                            let src = format!("source:{source}/{}", pad(*index));
                            if sources.insert(src.clone()) {
                                out.push_str(&format!("  \"{src}\" [shape=folder];\n"));
                            }
                            out.push_str(&format!("  \"{src}\" -> \"{}\";\n", s.id));
                        }
                        Input::Output { node, output } => out.push_str(&format!(
                            "  \"{}\" -> \"{}\" [label=\"{output}\"];\n",
                            self.g[*node].id, s.id
                        )),
                    }
                }
            }
        }
        out.push_str("}\n");
        out
    }
}
