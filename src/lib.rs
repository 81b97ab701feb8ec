//! export-center: reproducible, incremental, verifiable exports of security
//! evidence.
//!
//! Modules read as the pipeline: [`profile`] (workspace file) → [`rules`]
//! (step templates) → [`graph`] (expansion into a DAG) → [`key`] (step
//! keys) → [`cache`] (CAS, action cache, stat cache) → [`exec`] (ready
//! queue, driver, reasons) → [`actions`] (what steps do) using
//! [`sources`], [`adapters`] and [`formats`]; [`ops`] are the shared
//! operations and [`cli`] a thin shell over them. Imports flow one way.

pub mod actions;
pub mod adapters;
pub mod cache;
pub mod canon;
pub mod cli;
pub mod crashpoint;
pub mod digest;
pub mod error;
pub mod exec;
pub mod formats;
pub mod graph;
pub mod key;
pub mod ops;
pub mod profile;
pub mod rules;
pub mod select;
pub mod sources;
pub mod timefmt;

pub use error::Error;
