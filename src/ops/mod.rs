//! Operations: what the CLI (and later the HTTP API) calls. Each takes
//! typed options and returns typed results; none prints, except progress.

pub mod build;
pub mod cache;
pub mod check;
pub mod distribute;
mod fixpoint;
pub mod freshness;
pub mod generations;
pub mod kit;
pub mod layout;
pub mod mirror;
pub mod plan;
pub mod publish;
pub mod runlog;
pub mod tuf;
pub mod verify;
