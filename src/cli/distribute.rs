//! `export-center push` and `export-center pull`, and what `verify
//! oci://` shares with them: registry options from flags and the
//! environment (the only place credentials are looked up):
//! `REGISTRY_AUTH=user:password`, else the Docker client config
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::ops::distribute::{pull, push};
use crate::ops::generations;
use crate::registry::{self, auth::Credentials, Reference};
use crate::shown;

/// Flags every registry command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Speak plain HTTP to the registry (one without TLS).
    #[arg(long)]
    pub insecure: bool,
    /// Blobs larger than this many bytes are uploaded in chunks of it.
    #[arg(long, value_name = "BYTES", default_value_t = 32 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_size: u64,
}

impl RegistryArgs {
    /// Client options for `reference`, with the credentials the environment gives.
    pub fn options(&self, reference: &Reference) -> Result<registry::Options, Error> {
        Ok(registry::Options {
            insecure: self.insecure,
            credentials: credentials(&reference.registry)?,
            chunk_size: self.chunk_size,
            ..Default::default()
        })
    }
}

/// `REGISTRY_AUTH`, else the Docker config's entry for `registry`.
fn credentials(registry: &str) -> Result<Option<Credentials>, Error> {
    if let Ok(v) = std::env::var("REGISTRY_AUTH") {
        return Credentials::from_user_password(&v)
            .map(Some)
            .map_err(|e| Error::Usage(format!("REGISTRY_AUTH: {e}")));
    }
    let path = match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => PathBuf::from(d).join("config.json"),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".docker/config.json"),
            None => return Ok(None),
        },
    };
    let bytes = match crate::bounded::read_regular(&path, 4 << 20) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Usage(format!("{}: {e}", shown::path(&path)))),
    };
    registry::auth::from_docker_config(&bytes, registry)
        .map_err(|e| Error::Usage(format!("{}: {e}", shown::path(&path))))
}

pub fn parse_reference(s: &str) -> Result<Reference, Error> {
    Reference::parse(s).map_err(|e| Error::Usage(format!("not a registry reference: {e}")))
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Profiles to push (default: every profile whose published export has an OCI layout).
    pub profiles: Vec<String>,
    /// Where: REGISTRY/REPO[:TAG] for one profile (the tag defaults to the
    /// export's layout tag: 2 for trivy:db, 1 for trivy:java-db, the
    /// generation for mirrors); for several, REGISTRY/PREFIX and each goes
    /// to REGISTRY/PREFIX/<profile>.
    #[arg(long, value_name = "REGISTRY/REPO[:TAG]")]
    pub to: String,
    /// Push this kept earlier generation instead of the live export.
    #[arg(long, value_name = "N")]
    pub generation: Option<u64>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run_push(dir: &Path, a: PushArgs) -> Result<i32, Error> {
    let ws = super::load(dir)?;
    let to = parse_reference(&a.to)?;
    if to.digest.is_some() {
        return Err(Error::Usage(format!("--to {}: push to a tag, not a digest", a.to)));
    }
    let profiles: Vec<&crate::profile::ProfileDef> = if a.profiles.is_empty() {
        ws.profiles.values().filter(|p| ws.out_dir.join(&p.name).join("oci/index.json").is_file()).collect()
    } else {
        let mut v = Vec::new();
        for name in &a.profiles {
            v.push(ws.profiles.get(name).ok_or_else(|| {
                Error::Usage(format!("no profile {} in {}", shown::name(name), shown::path(&ws.file)))
            })?);
        }
        v
    };
    if profiles.is_empty() {
        return Err(Error::Usage(
            "nothing to push: no published export has an OCI layout (build first)".into(),
        ));
    }
    if profiles.len() > 1 && to.tag.is_some() {
        return Err(Error::Usage(format!(
            "--to {}: with several profiles, give REGISTRY/PREFIX without a tag (each goes to PREFIX/<profile>)",
            a.to
        )));
    }
    let mut pushed = Vec::new();
    for p in &profiles {
        let (export, rec) = generations::export_dir(&ws, p, a.generation)?;
        let target = if profiles.len() == 1 {
            to.clone()
        } else {
            parse_reference(&format!("{}/{}/{}", to.registry, to.repository, p.name))?
        };
        let opts = a.registry.options(&target)?;
        if !a.json {
            errln!("pushing {} generation {} to {target}", p.name, rec.generation);
        }
        // a progress bar on a terminal (never with --json)
        let bar = if !a.json && std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} blobs {wide_msg}",
                )
                .expect("template"),
            );
            b.set_message(p.name.clone());
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        let tick = |n: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(n);
        };
        let r = push::push(&export, rec.generation, &target, &opts, Some(&tick));
        bar.finish_and_clear();
        let r = r?;
        if !a.json {
            outln!(
                "pushed {} → {}@{}: {} blob(s) uploaded ({} bytes), {} already there; {} referrer(s){}",
                shown::name(&r.profile),
                shown::name(&r.reference),
                r.digest,
                r.blobs_uploaded,
                r.bytes_uploaded,
                r.blobs_present,
                r.referrers.len(),
                if r.referrers_api { "" } else { " (referrers tag fallback)" }
            )?;
        }
        pushed.push(r);
    }
    if a.json {
        super::out_json(&serde_json::json!({ "pushed": pushed }))?;
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// oci://REGISTRY/REPO:TAG (or @sha256:…, or REPO with --generation)
    /// of an artifact pushed by `export-center push`.
    pub reference: String,
    /// The folder to create (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Pull generation N (the `gen-N` tag every push writes) instead of the tag given.
    #[arg(long, value_name = "N")]
    pub generation: Option<u64>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run_pull(dir: &Path, a: PullArgs) -> Result<i32, Error> {
    let mut from = parse_reference(&a.reference)?;
    if let Some(n) = a.generation {
        if from.digest.is_some() {
            return Err(Error::Usage(format!(
                "{}: --generation and a digest contradict each other",
                a.reference
            )));
        }
        from = from.with_tag(&push::generation_tag(n));
    }
    let opts = a.registry.options(&from)?;
    let r = pull::pull(&from, &opts, &dir.join(&a.out))?;
    if a.json {
        super::out_json(&r)?;
    } else {
        outln!(
            "pulled {}@{} into {}: {} files, {} bytes (check it: export-center verify {})",
            shown::name(&r.reference),
            r.digest,
            shown::path(&a.out),
            r.files,
            r.bytes,
            shown::path(&a.out)
        )?;
    }
    Ok(0)
}
