//! Which event each journal position (seq) holds. Transfers are by far the most of them, and
//! their records are numbered in seq order, so only the other events are kept, each with its
//! seq: a seq that none of them holds is a transfer, and which one follows by counting the
//! others before it. A ledger of ten million transfers then keeps a few kilobytes here
//! instead of 80 MB.

use crate::chunked::Chunked;
use crate::state::LogEntry;

pub(crate) struct Positions {
    /// Positions up to this one belong to rows a store loaded (a slice); zero for a whole
    /// ledger.
    base: u64,
    /// Positions after `base`.
    len: u64,
    /// The record of the first transfer after `base`.
    first_transfer: u32,
    /// Every entry after `base` that is not a transfer, with its seq, in seq order.
    others: Chunked<(u64, LogEntry)>,
}

impl Positions {
    pub(crate) fn after(base: u64) -> Positions {
        Positions { base, len: 0, first_transfer: 0, others: Chunked::default() }
    }

    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.base + self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn transfers(&self) -> u64 {
        self.len - self.others.len() as u64
    }

    /// How many entries other than transfers lie before `seq`, and whether `seq` is one.
    fn rank(&self, seq: u64) -> (usize, Option<LogEntry>) {
        let rank = self.others.partition_point(|&(other, _)| other < seq);
        let found = (rank < self.others.len()).then(|| self.others[rank]).filter(|&(other, _)| other == seq);
        (rank, found.map(|(_, entry)| entry))
    }

    /// The entry at `seq`, which must lie after `base`.
    pub(crate) fn get(&self, seq: u64) -> LogEntry {
        assert!(seq > self.base && seq <= self.last_seq(), "seq {seq} is a position of this state");
        match self.rank(seq) {
            (_, Some(entry)) => entry,
            (rank, None) => LogEntry::Transfer(self.first_transfer + (seq - self.base - 1 - rank as u64) as u32),
        }
    }

    /// Takes the next position.
    pub(crate) fn push(&mut self, entry: LogEntry) {
        match entry {
            LogEntry::Transfer(index) if self.transfers() == 0 => self.first_transfer = index,
            LogEntry::Transfer(index) => {
                assert_eq!(u64::from(index), u64::from(self.first_transfer) + self.transfers(), "transfers in order")
            }
            other => self.others.push((self.last_seq() + 1, other)),
        }
        self.len += 1;
    }

    /// Gives back the last position, a transfer's (a linked chain rolled back); returns its
    /// record.
    pub(crate) fn pop_transfer(&mut self) -> u32 {
        let LogEntry::Transfer(index) = self.get(self.last_seq()) else { unreachable!("chains record transfers only") };
        self.len -= 1;
        index
    }

    /// Rebuilds the positions of a whole ledger of `len` entries from its other entries, in
    /// any order; `None` if two claim one seq or one lies outside `1..=len`.
    pub(crate) fn from_others(len: u64, mut others: Vec<(u64, LogEntry)>) -> Option<Positions> {
        others.sort_unstable_by_key(|&(seq, _)| seq);
        let in_range = others.first().is_none_or(|&(seq, _)| seq >= 1) && others.last().is_none_or(|&(seq, _)| seq <= len);
        if !in_range || others.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return None;
        }
        let mut positions = Positions::after(0);
        positions.len = len;
        for other in others {
            positions.others.push(other);
        }
        Some(positions)
    }

    /// The seqs of the transfers, in record order.
    pub(crate) fn transfer_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        let mut others = (0..self.others.len()).map(|index| self.others[index].0).peekable();
        (self.base + 1..=self.last_seq()).filter(move |&seq| {
            let other = others.next_if_eq(&seq).is_some();
            !other
        })
    }

    pub(crate) fn allocated_bytes(&self) -> usize {
        self.others.allocated_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seq_no_other_entry_holds_is_the_next_transfer() {
        let mut positions = Positions::after(10);
        let entries = [
            LogEntry::Account(0),
            LogEntry::Transfer(7),
            LogEntry::Transfer(8),
            LogEntry::Expiry(0),
            LogEntry::Transfer(9),
            LogEntry::Update(3),
            LogEntry::Transfer(10),
        ];
        for entry in entries {
            positions.push(entry);
        }
        for (offset, entry) in entries.iter().enumerate() {
            assert_eq!(positions.get(11 + offset as u64), *entry);
        }
        assert_eq!(positions.transfer_seqs().collect::<Vec<_>>(), [12, 13, 15, 17]);
        assert_eq!(positions.pop_transfer(), 10);
        assert_eq!(positions.last_seq(), 16);
        positions.push(LogEntry::Transfer(10));
        assert_eq!(positions.get(17), LogEntry::Transfer(10));

        let whole = Positions::from_others(5, vec![(4, LogEntry::Expiry(0)), (1, LogEntry::Account(0))]).unwrap();
        assert_eq!(
            (1..=5).map(|seq| whole.get(seq)).collect::<Vec<_>>(),
            [LogEntry::Account(0), LogEntry::Transfer(0), LogEntry::Transfer(1), LogEntry::Expiry(0), LogEntry::Transfer(2)]
        );
        assert!(Positions::from_others(5, vec![(4, LogEntry::Expiry(0)), (4, LogEntry::Account(0))]).is_none());
        assert!(Positions::from_others(5, vec![(6, LogEntry::Expiry(0))]).is_none());
    }
}
