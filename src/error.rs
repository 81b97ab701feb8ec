//! The top-level error: one variant per failing layer, and the one place
//! where errors become exit codes.
//!
//! | code | meaning                                                    |
//! |------|------------------------------------------------------------|
//! | 0    | success                                                    |
//! | 1    | a step failed (action error, I/O, cache trouble)           |
//! | 2    | invalid input or usage: profiles, rules, sources, documents, keys |
//! | 3    | verification failed                                        |

use crate::cache::CacheError;
use crate::graph::GraphError;
use crate::profile::ProfileError;
use crate::rules::RuleError;
use crate::sources::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("{0}")]
    Usage(String),
    /// Invalid documents (already reported per document).
    #[error("{0}")]
    InvalidInput(String),
    /// One or more steps failed.
    #[error("{0}")]
    StepsFailed(String),
    #[error("{0}")]
    Publish(String),
    /// A signing key is missing, unreadable, too open or malformed.
    #[error("{0}")]
    Key(String),
    #[error("verification failed: {0}")]
    Verify(String),
    /// Stdout could not be written. A closed pipe (`| head -1`) is not a
    /// failure: the CLI ends quietly with 0 before this reaches `exit_code`.
    #[error("writing to stdout: {0}")]
    Stdout(std::io::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Profile(_)
            | Error::Rule(_)
            | Error::Graph(_)
            | Error::Usage(_)
            | Error::Key(_)
            | Error::InvalidInput(_) => 2,
            Error::Source(SourceError::Refused { .. }) => 2,
            Error::Source(SourceError::Io { err, .. }) if err.kind() == std::io::ErrorKind::NotFound => 2,
            Error::Source(_) | Error::Cache(_) | Error::StepsFailed(_) | Error::Publish(_) => 1,
            Error::Stdout(_) => 1,
            Error::Verify(_) => 3,
        }
    }
}
