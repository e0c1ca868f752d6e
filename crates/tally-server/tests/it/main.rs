//! The HTTP API's behaviour, end to end through the Rust client. `harness` starts a server on
//! a private port; every other module is one concern.

#[macro_use]
mod harness;
mod api;
mod limits;
mod openapi;
mod stories;
