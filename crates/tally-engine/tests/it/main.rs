//! Tests of the embedded engine, one module per concern.

mod format;
mod recovery;
mod support;
