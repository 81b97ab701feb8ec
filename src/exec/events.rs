//! What a run tells its watcher: typed [`Event`]s sent to an [`EventSink`].
//!
//! The library never prints or draws: the driver and `ops::build` emit
//! events, and the caller decides what to show (the CLI draws a progress
//! bar on a terminal and plain lines otherwise; a service can stream them
//! as JSON, one object per event). Invariants: every step that starts gets
//! exactly one `step-started` and, later, one `step-finished`; a step that
//! never starts (skipped after a failure) gets only `step-finished` with
//! status `skipped`. Warnings of a step are emitted whether it executed or
//! was served from the cache (they are one of its outputs). A sink is
//! called from worker threads, so it must be `Sync`, and it must not block
//! for long: the build waits for it.

use std::path::PathBuf;

use serde::Serialize;

use super::reason::Reason;
use crate::formats::manifest::Warning;

/// How a step ended, as events and run records name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finish {
    Executed,
    Cached,
    Failed,
    Skipped,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Executed => "executed",
            Finish::Cached => "cached",
            Finish::Failed => "failed",
            Finish::Skipped => "skipped",
        }
    }
}

/// What publishing did to a profile's export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublishOutcome {
    /// The export was replaced (or created).
    Published,
    /// The live export already held these files.
    UpToDate,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// An attempt of the run starts `steps` steps (a corrupt cache blob
    /// makes a second attempt, which starts again from the top).
    RunStarted {
        attempt: usize,
        steps: usize,
    },
    StepStarted {
        step: String,
        action: String,
    },
    StepFinished {
        step: String,
        action: String,
        status: Finish,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(rename = "durationMs")]
        duration_ms: u64,
    },
    /// A warning a step wrote (replayed from the cache when it was cached).
    Warning {
        step: String,
        warning: Warning,
    },
    /// A profile's export after publishing.
    Published {
        profile: String,
        out: PathBuf,
        outcome: PublishOutcome,
    },
}

/// Where events go. Any `Fn(Event) + Sync` is a sink.
pub trait EventSink: Sync {
    fn emit(&self, event: Event);
}

impl<F: Fn(Event) + Sync> EventSink for F {
    fn emit(&self, event: Event) {
        self(event)
    }
}

/// A sink that drops every event.
pub struct Discard;

impl EventSink for Discard {
    fn emit(&self, _: Event) {}
}
