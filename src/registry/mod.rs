//! An OCI distribution client (registry API v2, OCI distribution spec
//! 1.1): what `push`, `pull` and `verify oci://` speak. It knows
//! references ([`reference`]), credentials and challenges ([`auth`]) and
//! requests ([`client`]); which files make which artifact is
//! `ops::distribute`'s business. The library reads no environment: the CLI
//! hands in [`Options`] with the credentials it found.
//!
//! Why not `oci-client`: it is async (a tokio runtime for a batch tool),
//! and we need exact control of the bytes we PUT (canonical manifests, so
//! a re-push is byte-identical) and of retries per request; the protocol
//! part is a few hundred lines over `ureq`.

pub mod auth;
pub mod client;
pub mod reference;

pub use client::{BlobSource, Client, Options};
pub use reference::Reference;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{url}: {why}")]
    Transport { url: String, why: String },
    #[error("{method} {url}: HTTP {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", crate::shown::name(.body)) })]
    Status { method: String, url: String, status: u16, body: String },
    #[error("{registry}: authentication failed: {why}")]
    Auth { registry: String, why: String },
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
}
