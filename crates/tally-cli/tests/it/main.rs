//! Tests of Tally as users run it. The HTTP API's behaviour end to end through the Rust
//! client, on both stores (`harness` starts a server on a private port; `api`, `connections`,
//! `keys`, `limits`, `movements`, `openapi` and `stories` are one concern each), then the
//! `tally` binary itself: real processes, real signals (`backups`, `check`, `cli`, `crash`,
//! `moves`, `nodes`, `tls`).

#[macro_use]
mod harness;
mod api;
mod connections;
mod keys;
mod limits;
mod maximal;
mod movements;
mod openapi;
mod reads;
mod stories;

mod backups;
mod check;
mod cli;
mod compatibility;
mod crash;
mod failover;
mod moves;
mod nodes;
mod support;
mod tls;
