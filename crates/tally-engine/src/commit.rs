//! One group commit's work on the state, without threads, clocks or I/O: apply the queued
//! requests and encode the journal record that holds them. The writer thread and the
//! deterministic simulator both commit through here, so the order of operations (expire
//! holds first, then each request, then one record of the requests that changed anything) is
//! written once.

use std::sync::RwLock;
use tally_core::codec::{decode_batch, encode_batch, DecodeError, Encoder};
use tally_core::{Outcome, Request, State};

/// Access to the state for one step. The writer takes its lock per step, so readers get in
/// between requests; the simulator owns the state outright.
pub trait StateAccess {
    fn with<R>(&mut self, step: impl FnOnce(&mut State) -> R) -> R;
}

impl StateAccess for &mut State {
    fn with<R>(&mut self, step: impl FnOnce(&mut State) -> R) -> R {
        step(self)
    }
}

impl StateAccess for &RwLock<State> {
    fn with<R>(&mut self, step: impl FnOnce(&mut State) -> R) -> R {
        step(&mut self.write().expect("state lock"))
    }
}

pub struct BatchApplied {
    /// One list of outcomes per request, in order.
    pub answers: Vec<Vec<Outcome>>,
    /// The journal record's payload, if anything changed.
    pub payload: Option<Vec<u8>>,
    /// The state's last seq afterwards: what the record must replay to.
    pub last_seq: u64,
    pub events: usize,
}

pub fn apply<'r>(mut state: impl StateAccess, now: u64, requests: impl IntoIterator<Item = &'r Request>) -> BatchApplied {
    let first_seq = state.with(|state| {
        let first_seq = state.last_seq();
        state.expire(now);
        first_seq
    });
    let mut changed = Vec::new();
    let mut answers = Vec::new();
    let mut events = 0;
    for request in requests {
        let (outcomes, changed_anything) = state.with(|state| {
            let before = state.last_seq();
            (state.apply(request, now), state.last_seq() != before)
        });
        if changed_anything {
            changed.push(request);
        }
        answers.push(outcomes);
        events += request.len();
    }
    let last_seq = state.with(|state| state.last_seq());
    let payload = (last_seq != first_seq).then(|| {
        let mut payload = Encoder::default();
        encode_batch(now, &changed, &mut payload);
        payload.bytes
    });
    BatchApplied { answers, payload, last_seq, events }
}

/// Applies one batch record to `state` exactly as `apply` first applied it (expiries first,
/// then each request at the record's timestamp): how recovery, `verify` and `import` rebuild
/// a ledger. Returns the state's last seq afterwards, for the caller to compare with the seq
/// the record was written at.
pub fn replay_record(state: &mut State, payload: &[u8]) -> Result<u64, DecodeError> {
    let batch = decode_batch(payload)?;
    state.expire(batch.timestamp);
    for request in &batch.requests {
        state.apply(request, batch.timestamp);
    }
    Ok(state.last_seq())
}
