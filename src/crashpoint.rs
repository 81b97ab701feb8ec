//! Crash injection for the crash-safety tests.
//!
//! `EXPORT_CENTER_CRASH_AT=<point>[:<n>]` aborts the process (like
//! `kill -9`: no destructors, no cleanup) the n-th time (default 1st) the
//! named point is reached. Points: `after-atomic-write`, `after-blob-rename`,
//! `before-ac-commit`, `after-step`, `publish-staged`, `publish-swapped`,
//! `publish-live` (new export live, its generation not yet recorded),
//! `apply-staged` (`mirror apply`: new generation staged and durable, not
//! swapped in), `apply-swapped` (swapped in, BASE's old files not removed),
//! `kit-staged` (`kit stage`: the kit complete in its temp folder, not
//! renamed to `offline-kit`).
//! Unset in normal use; reading one environment variable is the only cost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
static COUNT: AtomicUsize = AtomicUsize::new(0);

pub fn hit(point: &str) {
    let target = TARGET.get_or_init(|| {
        let v = std::env::var("EXPORT_CENTER_CRASH_AT").ok()?;
        let (name, n) = match v.split_once(':') {
            Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
            None => (v, 1),
        };
        Some((name, n))
    });
    if let Some((name, n)) = target {
        if name == point && COUNT.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            eprintln!("export-center: crash injected at {point}");
            std::process::abort();
        }
    }
}
