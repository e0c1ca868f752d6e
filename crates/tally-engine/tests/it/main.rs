//! Tests of the embedded engine's files and on-disk format. Its behaviour under crashes and faults is
//! tested in `tally-sim`, which owns the fault-injecting storage.

mod files;
mod format;
