//! One batch's work on the state, without threads, clocks or I/O: expire the holds that are
//! due, apply the queued requests in order, and build the record of the requests that changed
//! anything. The embedded writer, the PostgreSQL writer (on a slice) and the deterministic
//! simulator all commit through `apply`, and recovery, `verify` and `import` all rebuild
//! through `replay_record`, so the order of operations is written once.

use crate::codec::{decode_batch, encode_batch, DecodeError, Encoder};
use crate::{Outcome, Request, State};
use std::sync::RwLock;

/// Access to the state for one step. The embedded writer takes its lock per step, so readers
/// get in between requests; the simulator and a PostgreSQL slice own the state outright.
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
        // A poisoned lock means a step panicked half-way: the state is not to be trusted.
        step(&mut self.write().expect("state lock"))
    }
}

pub struct BatchApplied {
    /// One list of outcomes per request, in order.
    pub answers: Vec<Vec<Outcome>>,
    /// The batch record's payload, if anything changed.
    pub payload: Option<Vec<u8>>,
    /// The state's last seq afterwards: what the record must replay to.
    pub last_seq: u64,
    pub events: usize,
}

/// Applies one batch at `now` (or, on a slice, just before its horizon: `State::batch_time`):
/// first the holds due by then, then each request. The record holds only the requests that
/// changed something, so replaying it repeats exactly this.
pub fn apply<'r>(mut state: impl StateAccess, now: u64, requests: impl IntoIterator<Item = &'r Request>) -> BatchApplied {
    let (first_seq, now) = state.with(|state| {
        let (first_seq, now) = (state.last_seq(), state.batch_time(now));
        state.expire(now);
        (first_seq, now)
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
    let last_seq = state.with(|state| {
        // On a slice this costs only the rows the batch loaded, so it is checked always; a
        // whole ledger is checked after every request in debug builds (`State::apply`).
        if state.is_slice() {
            if let Err(broken) = state.check_invariants() {
                panic!("a batch broke an invariant: {broken}");
            }
        }
        state.last_seq()
    });
    assert!(last_seq >= first_seq, "seqs never go back");
    let payload = (last_seq != first_seq).then(|| {
        let mut payload = Encoder::default();
        encode_batch(now, &changed, &mut payload);
        debug_assert_eq!(decode_batch(&payload.bytes).map(|batch| batch.requests.len()), Ok(changed.len()), "the record round-trips");
        payload.bytes
    });
    BatchApplied { answers, payload, last_seq, events }
}

/// Applies one batch record to `state` exactly as `apply` first applied it (expiries first,
/// then each request at the record's timestamp). Returns the state's last seq afterwards, for
/// the caller to compare with the seq the record was written at.
pub fn replay_record(state: &mut State, payload: &[u8]) -> Result<u64, DecodeError> {
    let batch = decode_batch(payload)?;
    state.expire(batch.timestamp);
    for request in &batch.requests {
        state.apply(request, batch.timestamp);
    }
    Ok(state.last_seq())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{encoded_len, EVENT_ENCODED_BYTES_MAX};
    use crate::limits::{ALLOCATION_SHARES_MAX, ALLOCATION_WEIGHT_MAX};
    use crate::limits::{ASSET_CODE_LENGTH_MAX, ID_LENGTH_MAX, METADATA_BYTES_MAX};
    use crate::{AccountPatch, AccountUpdate, AssetCode, Decimal, Id, Metadata, NewAccount, NewTransfer, Share, TransferKind};

    fn id(fill: char) -> Id {
        Id::parse(&fill.to_string().repeat(ID_LENGTH_MAX)).unwrap()
    }

    fn metadata() -> Option<Metadata> {
        Some(Metadata::parse(&format!("{{\"k\":\"{}\"}}", "v".repeat(METADATA_BYTES_MAX - 8))).unwrap())
    }

    fn amount() -> Decimal {
        Decimal { digits: u128::MAX, fraction_digits: 18, negative: false }
    }

    /// The encoded size of a request holding one event, less the request's header.
    fn event_bytes(request: Request) -> usize {
        let mut encoded = Encoder::default();
        encode_batch(0, &[&request], &mut encoded);
        assert_eq!(encoded.bytes.len(), crate::codec::BATCH_HEADER_BYTES + encoded_len(&request), "the count is exact");
        encoded_len(&request) - 5
    }

    #[test]
    fn the_largest_event_of_every_kind_fits_the_derived_bound_and_one_reaches_it() {
        let asset = || AssetCode::parse(&"A".repeat(ASSET_CODE_LENGTH_MAX)).unwrap();
        let post = NewTransfer {
            id: id('t'),
            kind: TransferKind::Post { pending_id: id('h').leg(999), debit: Some(id('d')), credit: Some(id('c')), amount: Some(amount()) },
            asset: Some(asset()),
            linked: true,
            metadata: metadata(),
            if_debit_version: Some(u64::MAX),
            if_credit_version: Some(u64::MAX),
            balancing: false,
        };
        let hold = NewTransfer {
            kind: TransferKind::Pending { debit: id('d'), credit: id('c'), amount: amount(), timeout_ms: Some(u64::MAX) },
            balancing: true,
            ..post.clone()
        };
        let allocation = |shares: usize| NewTransfer {
            kind: TransferKind::Allocate {
                debit: id('d'),
                shares: vec![Share { credit: id('c'), weight: ALLOCATION_WEIGHT_MAX }; shares],
                amount: amount(),
                pending: true,
                timeout_ms: Some(u64::MAX),
            },
            ..post.clone()
        };
        let account = NewAccount {
            id: id('a'),
            asset: asset(),
            parent: Some(id('p')),
            min_balance: Some(amount()),
            max_balance: Some(amount()),
            metadata: metadata(),
        };
        let update = AccountUpdate {
            id: id('a'),
            patch: AccountPatch {
                min_balance: Some(Some(amount())),
                max_balance: Some(Some(amount())),
                metadata: Some(metadata()),
                closed: Some(true),
                force: true,
                if_version: Some(u64::MAX),
            },
        };
        assert_eq!(metadata().unwrap().len(), METADATA_BYTES_MAX);
        assert_eq!(event_bytes(Request::CreateTransfers(vec![post.clone()])), EVENT_ENCODED_BYTES_MAX);
        for request in [Request::CreateTransfers(vec![hold]), Request::CreateAccounts(vec![account]), Request::UpdateAccounts(vec![update])]
        {
            assert!(event_bytes(request) <= EVENT_ENCODED_BYTES_MAX);
        }
        // An allocation counts as one event per entry towards a request's limit.
        for shares in [1, 2, ALLOCATION_SHARES_MAX] {
            assert!(event_bytes(Request::CreateTransfers(vec![allocation(shares)])) <= shares * EVENT_ENCODED_BYTES_MAX);
        }
    }
}
