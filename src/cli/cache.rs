//! `export-center cache stats|gc|verify`.

use std::path::Path;

use crate::error::Error;
use crate::ops::cache;
use crate::shown;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Sizes and counts.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Trim the cache to at most SIZE (e.g. 500M, 2G), least recently used
    /// first; default `[workspace] cache-max-size`, else 10 GiB.
    Gc {
        #[arg(long, value_name = "SIZE")]
        max_size: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every blob and check every entry (exit 3 on a problem).
    Verify {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(dir: &Path, c: Command) -> Result<i32, Error> {
    let ws = super::load(dir)?;
    match c {
        Command::Stats { json } => {
            let s = cache::stats(&ws.cache_dir)?;
            if json {
                super::out_json(&s)?;
            } else {
                outln!(
                    "{}: {} bytes; {} blobs, {} blob bytes, {} action entries, {} temp files, {} scratch bytes",
                    shown::name(&s.path),
                    s.bytes,
                    s.blobs,
                    s.blob_bytes,
                    s.action_entries,
                    s.tmp_files,
                    s.scratch_bytes
                )?;
            }
            Ok(0)
        }
        Command::Gc { max_size, json } => {
            let max = match max_size {
                Some(s) => cache::parse_size(&s).map_err(|m| Error::Usage(format!("--max-size: {m}")))?,
                None => ws.cache_max_size.unwrap_or(cache::DEFAULT_MAX_SIZE),
            };
            let r = cache::gc(&ws.cache_dir, max)?;
            if json {
                super::out_json(&r)?;
            } else {
                let others: u64 = ["gzip", "stat", "steps", "scratch"]
                    .iter()
                    .map(|a| r.removed.get(a).copied().unwrap_or(0) as u64)
                    .sum();
                outln!(
                    "cache gc (limit {} bytes): {} -> {} bytes; removed {} entries, {} blobs, {} other files",
                    r.max_size,
                    r.bytes_before,
                    r.bytes_after,
                    r.entries_removed,
                    r.blobs_removed,
                    others
                )?;
            }
            Ok(0)
        }
        Command::Verify { json } => {
            let r = cache::verify(&ws.cache_dir)?;
            let code = if r.problems.is_empty() { 0 } else { 3 };
            // the verdict stands even if the reader stopped reading
            let shown = show_verify(&r, json);
            match shown {
                Err(e) if !super::is_closed_pipe(&e) => Err(e),
                _ => Ok(code),
            }
        }
    }
}

fn show_verify(r: &cache::FsckReport, json: bool) -> Result<(), Error> {
    if json {
        return super::out_json(r);
    }
    for p in &r.problems {
        outln!("FAIL {p}")?; // a message: its layer escaped the names in it
    }
    outln!("{} blobs, {} entries, {} problem(s)", r.blobs, r.entries, r.problems.len())
}
