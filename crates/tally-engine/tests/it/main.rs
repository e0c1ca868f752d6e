//! Tests of the embedded engine's on-disk format. Its behaviour under crashes and faults is
//! tested in `tally-sim`, which owns the fault-injecting storage.

mod format;
