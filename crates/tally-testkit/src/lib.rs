//! The tools that prove Tally keeps money safe.
//!
//! - `bank`: the bank workload and checker against any running server (`tally check`).
//! - `simulator`: deterministic simulation of the embedded engine over a storage that
//!   injects faults, checked against a reference after every step; every run is a seed.
//! - `storage`: that fault-injecting storage.
//! - `workload`: the seeded random workload the simulator and the differential test send.
//! - `postgres`: a private throwaway PostgreSQL cluster for tests and benchmarks.
//! - `random`: the seeded generator behind them.

pub mod bank;
pub mod postgres;
pub mod random;
pub mod simulator;
pub mod storage;
pub mod workload;

pub use random::Random;
pub use simulator::{run, Options, Report, Violation};
pub use storage::{Faults, SimStorage};
