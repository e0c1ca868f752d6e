//! What the tests of several crates share.
//!
//! - `workload`: the seeded random workload the simulator and the differential test send;
//! - `postgres`: a private throwaway PostgreSQL cluster for tests;
//! - `Random`: the seeded generator behind them (from `tally-check`).

pub mod postgres;
pub mod workload;

pub use tally_check::Random;
