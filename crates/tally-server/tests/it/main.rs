//! The HTTP API's behaviour, end to end through the Rust client. `harness` starts a server on
//! a private port; every other module is one concern.

mod api;
mod harness;
mod limits;
mod openapi;
mod stories;
