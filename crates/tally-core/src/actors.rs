//! Which API key made each journal entry, kept as runs of seqs: the key of a run holds from
//! its first seq until the next run begins. Consecutive entries nearly always come from one
//! key (a request's events are consecutive), so this costs a few bytes per change of key,
//! not per entry. Entries no key made (hold expiries, requests without a key) fall in runs
//! without one.

use crate::Id;
use std::collections::HashMap;

/// No key.
const NONE: u32 = u32::MAX;

#[derive(Clone, Debug, Default)]
pub struct Actors {
    keys: Vec<Id>,
    index: HashMap<Id, u32>,
    /// `(first seq, key)`, first seqs strictly increasing.
    runs: Vec<(u64, u32)>,
    acting: u32,
    /// The first entry starts a run even without a key: a store that keeps each batch's runs
    /// apart (a slice) must not let an earlier batch's key run on into this one.
    start_with_a_run: bool,
}

impl Actors {
    pub fn new() -> Actors {
        Actors { acting: NONE, ..Actors::default() }
    }

    /// The bytes its runs and keys allocated (keys are few: a ledger holds at most
    /// `KEYS_MAX`).
    pub fn allocated_bytes(&self) -> usize {
        self.runs.capacity() * std::mem::size_of::<(u64, u32)>()
            + self.keys.capacity() * std::mem::size_of::<Id>()
            + crate::memory::hashed(self.index.capacity(), std::mem::size_of::<(Id, u32)>())
    }

    /// For one batch's slice: its first entry starts a run, key or none.
    pub fn for_slice() -> Actors {
        Actors { start_with_a_run: true, ..Actors::new() }
    }

    /// Entries recorded from now on were made with `key` (or with none).
    pub fn act_as(&mut self, key: Option<&Id>) {
        self.acting = match key {
            None => NONE,
            Some(key) => match self.index.get(key) {
                Some(&index) => index,
                None => {
                    let index = u32::try_from(self.keys.len()).expect("fewer keys than entries");
                    self.keys.push(key.clone());
                    self.index.insert(key.clone(), index);
                    index
                }
            },
        };
    }

    /// The entry at `seq` was just recorded.
    pub fn recorded(&mut self, seq: u64) {
        let current = self.runs.last().map_or(if self.start_with_a_run { None } else { Some(NONE) }, |&(_, key)| Some(key));
        if current != Some(self.acting) {
            assert!(self.runs.last().is_none_or(|&(first, _)| first < seq), "runs begin in seq order");
            self.runs.push((seq, self.acting));
        }
    }

    /// Entries after `last_seq` were taken back (a linked chain that failed).
    pub fn rolled_back(&mut self, last_seq: u64) {
        while self.runs.last().is_some_and(|&(first, _)| first > last_seq) {
            self.runs.pop();
        }
    }

    fn key(&self, index: u32) -> Option<&Id> {
        (index != NONE).then(|| &self.keys[index as usize])
    }

    /// The key behind the entry at `seq`.
    pub fn key_at(&self, seq: u64) -> Option<&Id> {
        let after = self.runs.partition_point(|&(first, _)| first <= seq);
        after.checked_sub(1).and_then(|run| self.key(self.runs[run].1))
    }

    /// The runs that cover seqs `from` to `to`: the one `from` falls in, then those beginning
    /// after it, up to `to`.
    pub fn runs_between(&self, from: u64, to: u64) -> Vec<(u64, Option<Id>)> {
        let start = self.runs.partition_point(|&(first, _)| first <= from).saturating_sub(1);
        self.runs[start..].iter().take_while(|&&(first, _)| first <= to).map(|&(first, key)| (first, self.key(key).cloned())).collect()
    }

    /// Every run, in order.
    pub fn runs(&self) -> impl Iterator<Item = (u64, Option<&Id>)> {
        self.runs.iter().map(|&(first, key)| (first, self.key(key)))
    }

    /// Adds a run as a snapshot holds it; runs must come in seq order.
    pub fn restore_run(&mut self, first: u64, key: Option<&Id>) -> Result<(), String> {
        if self.runs.last().is_some_and(|&(last, _)| last >= first) {
            return Err(format!("key runs out of order at seq {first}"));
        }
        self.act_as(key);
        self.runs.push((first, self.acting));
        self.acting = NONE;
        Ok(())
    }

    pub fn run_count(&self) -> usize {
        self.runs.len()
    }
}

/// The key behind the entry at `seq`, from runs (as `Actors::runs_between` gives them) that
/// cover it.
pub fn key_in(runs: &[(u64, Option<Id>)], seq: u64) -> Option<&Id> {
    let after = runs.partition_point(|&(first, _)| first <= seq);
    after.checked_sub(1).and_then(|run| runs[run].1.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_name_the_key_of_every_seq_and_roll_back_with_the_log() {
        let (a, b) = (Id::parse("k1").unwrap(), Id::parse("k2").unwrap());
        let mut actors = Actors::new();
        actors.recorded(1);
        assert_eq!(actors.run_count(), 0, "entries no key made need no run until a key has acted");
        actors.act_as(Some(&a));
        actors.recorded(2);
        actors.recorded(3);
        actors.act_as(Some(&b));
        actors.recorded(4);
        actors.act_as(None);
        actors.recorded(5);
        assert_eq!(
            [1, 2, 3, 4, 5, 6].map(|seq| actors.key_at(seq).cloned()),
            [None, Some(a.clone()), Some(a.clone()), Some(b.clone()), None, None]
        );
        let runs = actors.runs_between(3, 4);
        assert_eq!(runs, [(2, Some(a.clone())), (4, Some(b.clone()))]);
        assert_eq!([3, 4].map(|seq| key_in(&runs, seq).cloned()), [Some(a.clone()), Some(b.clone())]);
        actors.rolled_back(3);
        assert_eq!(actors.key_at(4), Some(&a), "the run of the entries taken back is gone");
        let mut slice = Actors::for_slice();
        slice.recorded(9);
        assert_eq!(slice.runs_between(9, 9), [(9, None)], "a slice's first entry starts a run, key or none");
    }
}

#[cfg(test)]
mod state_tests {
    use crate::{AssetCode, Id, NewAsset, Request, State};

    fn asset(code: &str) -> Request {
        Request::CreateAssets(vec![NewAsset { code: AssetCode::parse(code).unwrap(), scale: 2 }])
    }

    #[test]
    fn the_key_behind_each_entry_is_kept_through_a_snapshot() {
        let key = Id::parse("3f9a0c2d71e4").unwrap();
        let mut state = State::new();
        state.apply(&asset("AAA"), 1);
        state.apply(&asset("BBB").by(Some(key.clone())), 2);
        state.apply(&asset("CCC"), 3);
        assert_eq!([1, 2, 3].map(|seq| state.key_at(seq).cloned()), [None, Some(key.clone()), None]);
        let loaded = State::from_snapshot_bytes(&state.snapshot_bytes()).unwrap();
        assert_eq!([1, 2, 3].map(|seq| loaded.key_at(seq).cloned()), [None, Some(key), None]);
        assert_eq!(loaded.snapshot_bytes(), state.snapshot_bytes());
    }
}
