//! Execution: the pure ready queue ([`queue`]), typed rebuild reasons
//! ([`reason`]) and the rayon driver ([`driver`]) that pops ready steps,
//! checks the action cache, runs actions and reports.

pub mod driver;
pub mod queue;
pub mod reason;
