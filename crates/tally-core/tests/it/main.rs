//! Tests of the ledger state machine, one module per concern.

mod closing;
mod history;
mod leases;
mod model;
mod movements;
mod results;
mod slice;
mod support;
