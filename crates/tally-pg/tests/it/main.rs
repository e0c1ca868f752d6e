//! The PostgreSQL store against a private PostgreSQL cluster each test file starts.

mod contention;
mod differential;
mod expiry;
mod nodes;
mod same_batch;
