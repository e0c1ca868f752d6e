//! Deterministic simulation of the embedded engine.
//!
//! The key decision: every run is a seed. The simulator drives the engine's own recovery and
//! batch step over `SimStorage`, an in-memory storage that tears writes, flips bits on read,
//! fails fsyncs, fills up and loses what was not synced (power loss, which `kill -9` cannot
//! show), and checks the state against a reference after every step. A failure prints the
//! seed that reproduces it exactly.
//!
//! - `simulator`: the run loop and its checks;
//! - `storage`: the fault-injecting storage.

pub mod simulator;
pub mod storage;

pub use simulator::{run, Options, Report, Violation};
pub use storage::{Faults, SimStorage};
