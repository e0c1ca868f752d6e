//! `tally check`: proves from the outside that running servers keep money safe.
//!
//! The key decision: the checker knows nothing of how a store works. It drives one or more
//! servers through the public API with the bank workload (transfers, holds, chains, bound
//! changes, resends of unknown outcomes), optionally killing and restarting them, and checks
//! every invariant from what the API answers and what the journal feed replays.
//!
//! - `bank`: the workload and the checker;
//! - `random`: the small seeded generator behind it (also used by the simulator and bench).

pub mod bank;
pub mod random;

pub use random::Random;
