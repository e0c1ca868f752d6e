//! Tests of the `tally` binary as users run it: real processes, real signals.

mod cli;
mod crash;
mod support;
