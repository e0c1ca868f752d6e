//! Hostile input: everything that crosses the wire or comes back from disk is decoded by
//! code that must answer with an error, never panic, never misread. Each target runs the
//! committed corpus (`fuzz/corpus/<target>/`) and then generated inputs, most of them
//! mutations of valid ones. `TALLY_FUZZ_CASES` sets how many (default 20,000 per target).

mod hostile;
