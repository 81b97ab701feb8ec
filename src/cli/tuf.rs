//! `export-center tuf rotate-root --profile P --new-key NEW.key [--json]`
//! (see `crate::ops::tuf`).

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::shown;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Make the next root of a mirror's TUF repository, signed by the
    /// current key and NEW.key; the next build (signing with NEW.key) publishes it.
    RotateRoot {
        #[arg(long)]
        profile: String,
        /// The new root key (PKCS#8 PEM, mode 0600, as `keygen` writes).
        #[arg(long, value_name = "NEW.key")]
        new_key: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(dir: &Path, c: Command) -> Result<i32, Error> {
    let ws = super::load(dir)?;
    match c {
        Command::RotateRoot { profile, new_key, json } => {
            let r = crate::ops::tuf::rotate_root(&ws, &profile, &dir.join(new_key))?;
            if json {
                super::out_json(&r)?;
            } else {
                outln!(
                    "{}.root.json of {} waits at {} (signed by {} and {}; expires {})",
                    r.version,
                    shown::name(&r.profile),
                    shown::path(&r.path),
                    r.old_keyid,
                    r.new_keyid,
                    r.expires
                )?;
                outln!("next: point {}'s signing key at the new key and build it", shown::name(&r.profile))?;
            }
            Ok(0)
        }
    }
}
