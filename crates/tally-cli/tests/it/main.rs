//! Tests of the `tally` binary as users run it: real processes, real signals.

mod check;
mod cli;
mod crash;
mod moves;
mod nodes;
mod support;
