//! Execution: the pure ready queue ([`queue`]), typed rebuild reasons
//! ([`reason`]), the events a run reports ([`events`]) and the rayon
//! driver ([`driver`]) that pops ready steps, checks the action cache, runs
//! actions and reports to an event sink (it never prints).

pub mod driver;
pub mod events;
pub mod queue;
pub mod reason;
