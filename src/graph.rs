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
use crate::profile::{ProfileDef, Workspace};
use crate::rules::{self, ForEach, InputSpec, Rule};
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

/// One instance of a step template: its shard (none for per-profile steps) and variables.
type Instance<'a> = (Option<(String, u32)>, BTreeMap<&'a str, Value>);

fn pad(index: u32) -> String {
    format!("{index:04}")
}

pub fn expand(
    ws: &Workspace,
    profiles: &[&ProfileDef],
    rules: &BTreeMap<String, Rule>,
    snaps: &BTreeMap<String, Snapshot>,
    signing: &BTreeMap<String, PublicKey>,
) -> Result<StepGraph, GraphError> {
    let mut g: DiGraph<Step, ()> = DiGraph::new();
    let mut interned: HashMap<String, NodeIndex> = HashMap::new();
    let mut finals = BTreeMap::new();
    for p in profiles {
        let rule = rules.get(&p.kind).ok_or_else(|| GraphError {
            profile: p.name.clone(),
            message: format!("no rule for kind {:?}", p.kind),
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
        let mut pvars: BTreeMap<&str, Value> = BTreeMap::new();
        pvars.insert("profile.name", json!(p.name));
        pvars.insert("profile.kind", json!(p.kind));
        pvars.insert("profile.select", p.select.to_json());
        pvars.insert("profile.sources", Value::Array(sources));
        pvars.insert("profile.compression-level", json!(p.compression_level));
        pvars.insert("workspace.source-date-epoch", json!(ws.source_date_epoch));
        pvars.insert("tool.version", json!(env!("CARGO_PKG_VERSION")));
        pvars.insert("profile.signing", signing.get(&p.name).map_or(Value::Null, |k| k.describe()));
        pvars.insert("rule.version", json!(rule.version));
        pvars.insert("profile.next-update-hours", json!(p.next_update_hours));
        let actions: serde_json::Map<String, Value> =
            rule.steps.iter().map(|t| (t.action.id().to_string(), json!(t.action.version()))).collect();
        pvars.insert("rule.actions", Value::Object(actions));
        // template name → instances: (source, shard index) → node
        let mut made: BTreeMap<&str, BTreeMap<(String, u32), NodeIndex>> = BTreeMap::new();
        for t in &rule.steps {
            let mut instances: Vec<Instance<'_>> = Vec::new();
            match t.for_each {
                ForEach::Profile => instances.push((None, pvars.clone())),
                ForEach::Shard => {
                    for s in &p.inputs {
                        let snap = &snaps[s];
                        for sh in &snap.shards {
                            let mut v = pvars.clone();
                            v.insert("shard.source", json!(s));
                            v.insert("shard.index", json!(pad(sh.index)));
                            v.insert("shard.format", json!(snap.def.format.as_str()));
                            v.insert("shard.type", json!(snap.def.format.record_type().as_str()));
                            v.insert("shard.path", json!(snap.def.declared_path));
                            let origin = match snap.origin {
                                crate::sources::Origin::Dir(_) => "dir",
                                crate::sources::Origin::Archive => "archive",
                            };
                            v.insert("shard.origin", json!(origin));
                            v.insert(
                                "shard.data-source",
                                serde_json::to_value(&snap.def.data_source).expect("serialisable"),
                            );
                            instances.push((Some((s.clone(), sh.index)), v));
                        }
                    }
                }
            }
            for (shard, vars) in instances {
                let params = rules::instantiate(&t.params, &vars);
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
fn vars_by_param(template: &Value) -> BTreeMap<String, Vec<String>> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => {
                let mut rest = s.as_str();
                while let Some((_, tail)) = rest.split_once('{') {
                    let Some((var, after)) = tail.split_once('}') else { break };
                    out.push(var.to_string());
                    rest = after;
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut by = BTreeMap::new();
    for (k, v) in template.as_object().into_iter().flatten() {
        let mut vars = Vec::new();
        walk(v, &mut vars);
        vars.sort();
        vars.dedup();
        by.insert(k.clone(), vars);
    }
    by
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
