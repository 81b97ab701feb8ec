//! `export-center keygen --out PATH`: a new Ed25519 signing key pair.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::shown;
use crate::signing::keys;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Writes PATH.key (PKCS#8 PEM, mode 0600) and PATH.pub (public key PEM).
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn run(dir: &Path, a: Args) -> Result<i32, Error> {
    let (key, public_path, public) =
        keys::keygen(&dir.join(&a.out)).map_err(|e| Error::Key(e.to_string()))?;
    if a.json {
        super::out_json(&serde_json::json!({
            "key": key, "public": public_path, "keyid": public.keyid(), "keytype": "ed25519",
        }))?;
    } else {
        outln!("private key: {} (mode 0600; keep it secret, never commit it)", shown::path(&key))?;
        outln!("public key:  {} (give it to verifiers: verify --trust-root)", shown::path(&public_path))?;
        outln!("keyid:       {}", public.keyid())?;
    }
    Ok(0)
}
