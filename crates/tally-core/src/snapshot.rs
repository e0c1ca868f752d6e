//! A whole state as a stream of bytes, so a restart loads it instead of replaying the journal
//! from the start. The stream is cut into pieces of about `SNAPSHOT_PIECE_BYTES` at item
//! boundaries, so neither writing nor reading ever holds a second copy of the state in memory.
//!
//! Only primary data is stored; every index (and the log, which is the union of all records
//! ordered by seq) is rebuilt on load, which also proves the data consistent: each seq must be
//! claimed by exactly one record.

use crate::chunked::{Span, Strings, CHUNK_ITEMS};
use crate::codec::{DecodeError, Decoder, Encoder};
use crate::id::Id;
use crate::limits::ACCOUNT_DEPTH_MAX;
use crate::metadata::Metadata;
use crate::positions::Positions;
use crate::records::{HistoryFiles, Text, SEGMENT_SHIFT_MAX, SEGMENT_SHIFT_MIN};
use crate::state::{
    Account, Asset, ExpiryRecord, HoldState, LogEntry, RecordKind, RenewalRecord, Settings, State, Totals, TransferRecord, UpdateRecord,
    CHECKPOINT_INTERVAL,
};

const NONE: u32 = u32::MAX;

/// The encoder hands over a piece once it holds at least this much.
pub const SNAPSHOT_PIECE_BYTES: usize = 8 << 20;

/// No single item (an account, a chunk of history, a chunk of strings) exceeds this, so no
/// piece exceeds `SNAPSHOT_PIECE_BYTES + SNAPSHOT_ITEM_BYTES_MAX`.
pub const SNAPSHOT_ITEM_BYTES_MAX: usize = 2 << 20;

/// The layout `encode_snapshot` writes. 2 added `closed` to every account's settings and
/// hold renewals (a seventh count, and a section after the expiries); 3 added the API keys
/// behind the entries (an eighth count, and runs of seqs after the renewals); 4 keeps each
/// transfer's id and metadata with its record instead of a table of strings, and may stand on
/// history segments (four more counts, and two sections at the end).
/// `decode_snapshot` still reads 1 to 3.
pub const SNAPSHOT_FORMAT: u32 = 4;

/// A resolved hold: its record, how it stands, the record that resolved it.
type Resolved = (u32, HoldState, u32);

/// Which records a snapshot holds itself.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// What a store keeps: the records not yet handed off, standing on the segments for the rest.
    Standing,
    /// Every record, whatever was handed off: the same for any two states with the same history.
    Whole,
}

fn fail<T>(what: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(what.into()))
}

/// Four running totals, each within `TOTAL_MAX` (beyond it balances would not fit an i128).
fn decode_totals(input: &mut Decoder<'_>) -> Result<Totals, DecodeError> {
    let mut values = [0u128; 4];
    for value in &mut values {
        *value = input.u128()?;
        if *value > crate::state::TOTAL_MAX {
            return fail("a running total exceeds its limit");
        }
    }
    let [debits_posted, credits_posted, debits_pending, credits_pending] = values;
    Ok(Totals { debits_posted, credits_posted, debits_pending, credits_pending })
}

fn encode_totals(out: &mut Encoder, totals: &Totals) {
    for total in [totals.debits_posted, totals.credits_posted, totals.debits_pending, totals.credits_pending] {
        out.u128(total);
    }
}

/// An account's own item, then its history in chunks, then its checkpoints.
fn encode_account<E>(out: &mut Pieces<'_, E>, account: &Account) -> Result<(), E> {
    out.item(|o| {
        o.str(account.id.as_str());
        o.u32(account.asset);
        o.u32(account.parent.unwrap_or(NONE));
        encode_settings(o, &account.settings);
        encode_settings(o, &account.created_settings);
        encode_totals(o, &account.totals);
        o.u64(account.created_seq);
        o.u64(account.timestamp);
        o.u64(account.history.len() as u64);
    })?;
    for chunk in account.history.chunks(CHUNK_ITEMS) {
        out.item(|o| chunk.iter().for_each(|&seq| o.u64(seq)))?;
    }
    for totals in &account.checkpoints {
        out.item(|o| encode_totals(o, totals))?;
    }
    Ok(())
}

/// A transfer record with its id and metadata, and its expiry if it is a hold with a timeout
/// (`decode_transfer`).
fn encode_transfer(o: &mut Encoder, record: &TransferRecord, text: &Text<'_>, expiry: Option<u64>) {
    o.option(expiry, Encoder::u64);
    o.u128(record.amount);
    o.u64(record.seq);
    o.u64(record.timestamp);
    o.u64(record.fingerprint);
    o.u32(record.debit);
    o.u32(record.credit);
    o.u32(record.related);
    o.u8(record.kind as u8);
    o.u8(record.result as u8);
    o.u8(record.hold_state as u8);
    o.str(text.id());
    o.option(text.metadata(), Encoder::str);
}

fn encode_settings(out: &mut Encoder, settings: &Settings) {
    out.option(settings.min_balance, Encoder::i128);
    out.option(settings.max_balance, Encoder::i128);
    out.option(settings.metadata.as_deref(), Encoder::str);
    out.bool(settings.closed);
}

fn decode_settings(input: &mut Decoder<'_>, format: u32) -> Result<Settings, DecodeError> {
    Ok(Settings {
        min_balance: input.option(Decoder::i128)?,
        max_balance: input.option(Decoder::i128)?,
        metadata: input.option(Decoder::metadata)?,
        closed: if format >= 2 { input.bool()? } else { false },
    })
}

/// Collects items and hands over a piece whenever enough has gathered.
struct Pieces<'a, E> {
    buffer: Encoder,
    emit: &'a mut dyn FnMut(&[u8]) -> Result<(), E>,
}

impl<E> Pieces<'_, E> {
    fn item(&mut self, write: impl FnOnce(&mut Encoder)) -> Result<(), E> {
        let before = self.buffer.bytes.len();
        write(&mut self.buffer);
        assert!(self.buffer.bytes.len() - before <= SNAPSHOT_ITEM_BYTES_MAX, "snapshot items are bounded");
        if self.buffer.bytes.len() >= SNAPSHOT_PIECE_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), E> {
        if !self.buffer.bytes.is_empty() {
            (self.emit)(&self.buffer.bytes)?;
            self.buffer.bytes.clear();
        }
        Ok(())
    }
}

/// Reads items from pieces fetched one at a time.
struct PieceReader<'a> {
    piece: Vec<u8>,
    position: usize,
    next: &'a mut dyn FnMut() -> Result<Option<Vec<u8>>, DecodeError>,
}

impl PieceReader<'_> {
    fn item<T>(&mut self, read: impl FnOnce(&mut Decoder<'_>) -> Result<T, DecodeError>) -> Result<T, DecodeError> {
        if self.position == self.piece.len() {
            match (self.next)()? {
                Some(piece) => {
                    self.piece = piece;
                    self.position = 0;
                }
                None => return fail("the snapshot ends early"),
            }
        }
        let mut decoder = Decoder::new(&self.piece[self.position..]);
        let value = read(&mut decoder)?;
        self.position += decoder.position();
        Ok(value)
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        if self.position != self.piece.len() || (self.next)()?.is_some() {
            return fail("trailing data after the snapshot");
        }
        Ok(())
    }
}

impl State {
    /// Writes the state as a sequence of pieces through `emit`, standing on the history
    /// segments it handed off (a load needs them).
    pub fn encode_snapshot<E>(&self, emit: &mut dyn FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        self.encode(Form::Standing, emit)
    }

    /// Writes the state with every record in it, whatever was handed off: two states with the
    /// same history encode the same, which is how a replay is compared with a running ledger.
    pub fn encode_whole<E>(&self, emit: &mut dyn FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        self.encode(Form::Whole, emit)
    }

    fn encode<E>(&self, form: Form, emit: &mut dyn FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        assert!(self.slice.is_none(), "only a whole ledger is snapshotted");
        let handed = if form == Form::Standing { self.records.handed_segments() } else { 0 };
        let first = handed << self.records.shift();
        let (resolutions, timeouts) = self.handed_holds(first);
        let mut out = Pieces { buffer: Encoder::default(), emit };
        out.item(|o| {
            o.u64(self.last_timestamp());
            for count in [
                self.assets.len(),
                self.accounts.len(),
                self.records.len(),
                self.updates.len(),
                self.expiries.len(),
                self.renewals.len(),
                self.actors.run_count(),
                handed,
                if handed > 0 { self.records.shift() as usize } else { 0 },
                resolutions.len(),
                timeouts.len(),
            ] {
                o.u64(count as u64);
            }
        })?;
        for asset in &self.assets {
            out.item(|o| {
                o.str(asset.code.as_str());
                o.u8(asset.scale);
                o.u64(asset.seq);
                o.u64(asset.timestamp);
            })?;
        }
        for account in &self.accounts {
            encode_account(&mut out, account)?;
        }
        for index in first as u32..self.records.len() as u32 {
            let (record, text) = (self.record_at(index), self.text_of(index));
            out.item(|o| encode_transfer(o, &record, &text, self.hold_expiry.get(&index).copied()))?;
        }
        for update in &self.updates {
            out.item(|o| {
                o.u32(update.account);
                encode_settings(o, &update.before);
                encode_settings(o, &update.after);
                o.u64(update.seq);
                o.u64(update.timestamp);
            })?;
        }
        for expiry in &self.expiries {
            out.item(|o| {
                o.u32(expiry.hold);
                o.u64(expiry.seq);
                o.u64(expiry.timestamp);
            })?;
        }
        for renewal in &self.renewals {
            out.item(|o| {
                o.u32(renewal.hold);
                o.u64(renewal.expires_at);
                o.u64(renewal.seq);
                o.u64(renewal.timestamp);
            })?;
        }
        for (first, key) in self.actors.runs() {
            out.item(|o| {
                o.u64(first);
                o.option(key, |o, key| o.str(key.as_str()));
            })?;
        }
        self.encode_handed_holds(&mut out, resolutions, timeouts)?;
        out.flush()
    }

    /// The holds among the first `first` records (those handed off) that were resolved, and
    /// those with a timeout, each in record order.
    fn handed_holds(&self, first: usize) -> (Vec<Resolved>, Vec<(u32, u64)>) {
        let mut resolutions: Vec<_> = if first > 0 { self.records.resolutions().collect() } else { Vec::new() };
        resolutions.sort_unstable_by_key(|&(hold, _, _)| hold);
        let mut timeouts: Vec<(u32, u64)> =
            self.hold_expiry.iter().filter(|&(&hold, _)| (hold as usize) < first).map(|(&hold, &at)| (hold, at)).collect();
        timeouts.sort_unstable();
        (resolutions, timeouts)
    }

    fn encode_handed_holds<E>(&self, out: &mut Pieces<'_, E>, resolutions: Vec<Resolved>, timeouts: Vec<(u32, u64)>) -> Result<(), E> {
        for (hold, state, by) in resolutions {
            out.item(|o| {
                o.u32(hold);
                o.u8(state as u8);
                o.u32(by);
            })?;
        }
        for (hold, expires_at) in timeouts {
            out.item(|o| {
                o.u32(hold);
                o.u64(expires_at);
                o.bool(self.holds_by_expiry.contains(&(expires_at, hold)));
            })?;
        }
        Ok(())
    }

    /// Rebuilds a state from the pieces `encode_snapshot` wrote, fetched one at a time.
    /// `total_bytes` (the pieces' size together) bounds every count read, so damaged counts
    /// fail fast instead of reserving memory they cannot describe.
    /// A snapshot that stands on history segments reads them through `history`.
    pub fn decode_snapshot(
        format: u32,
        total_bytes: usize,
        next: &mut dyn FnMut() -> Result<Option<Vec<u8>>, DecodeError>,
        history: Option<HistoryFiles>,
    ) -> Result<State, DecodeError> {
        if !(1..=SNAPSHOT_FORMAT).contains(&format) {
            return fail(format!("snapshot format {format}; this build reads 1 to {SNAPSHOT_FORMAT}"));
        }
        let mut input = PieceReader { piece: Vec::new(), position: 0, next };
        let (last_timestamp, counts) = input.item(|i| Counts::decode(i, format))?;
        let entries = counts.entries(total_bytes)?;
        let mut loader = Loader { input, state: State::new(), entries, counts, format, strings: None, history, others: Vec::new() };
        loader.assets()?;
        loader.accounts()?;
        loader.strings()?;
        loader.transfers()?;
        loader.updates()?;
        loader.expiries()?;
        loader.renewals()?;
        loader.key_runs()?;
        loader.handed_holds()?;
        loader.input.finish()?;
        loader.positions()?;
        let mut state = loader.state;
        state.restore_clock(last_timestamp);
        state.check_invariants().map_err(DecodeError)?;
        Ok(state)
    }

    /// The whole snapshot (every record in it) in one buffer, for tests and small states.
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.encode_whole::<std::convert::Infallible>(&mut |piece| {
            bytes.extend_from_slice(piece);
            Ok(())
        })
        .unwrap_or_else(|never| match never {});
        bytes
    }

    /// Decodes `snapshot_bytes` output.
    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<State, DecodeError> {
        let mut given = Some(bytes.to_vec());
        State::decode_snapshot(SNAPSHOT_FORMAT, bytes.len(), &mut || Ok(given.take()), None)
    }
}

/// How many history segments a snapshot of `format` whose first piece is `piece` stands on
/// (a snapshot that stands on any holds fewer records than its state has).
pub fn history_segments(format: u32, piece: &[u8]) -> Result<usize, DecodeError> {
    let (_, counts) = Counts::decode(&mut Decoder::new(piece), format)?;
    Ok(counts.handed_segments)
}

/// How many items of each kind a snapshot holds, from its first item.
struct Counts {
    assets: usize,
    accounts: usize,
    /// Formats 1 to 3 only: the table the records' text lay in.
    string_chunks: usize,
    transfers: usize,
    updates: usize,
    expiries: usize,
    renewals: usize,
    key_runs: usize,
    /// History segments the snapshot stands on, and their size (records as a power of two).
    handed_segments: usize,
    segment_shift: u32,
    /// Handed-off holds resolved, and handed-off holds with a timeout.
    resolutions: usize,
    timeouts: usize,
}

impl Counts {
    fn decode(input: &mut Decoder<'_>, format: u32) -> Result<(u64, Counts), DecodeError> {
        let last_timestamp = input.u64()?;
        // Format 1 has no renewals, formats before 3 no key runs, formats before 4 no history
        // segments and a table of strings third.
        let mut counts = [0usize; 11];
        let present = match format {
            1 => 6,
            2 => 7,
            3 => 8,
            _ => 11,
        };
        for count in &mut counts[..present] {
            *count = usize::try_from(input.u64()?).or_else(|_| fail("count too large"))?;
        }
        let counts = if format <= 3 {
            let [assets, accounts, string_chunks, transfers, updates, expiries, renewals, key_runs, ..] = counts;
            Counts { assets, accounts, string_chunks, transfers, updates, expiries, renewals, key_runs, ..Counts::none() }
        } else {
            let [assets, accounts, transfers, updates, expiries, renewals, key_runs, handed_segments, shift, resolutions, timeouts] =
                counts;
            let segment_shift = u32::try_from(shift).or_else(|_| fail("segment size out of range"))?;
            Counts {
                assets,
                accounts,
                string_chunks: 0,
                transfers,
                updates,
                expiries,
                renewals,
                key_runs,
                handed_segments,
                segment_shift,
                resolutions,
                timeouts,
            }
        };
        Ok((last_timestamp, counts))
    }

    fn none() -> Counts {
        Counts {
            assets: 0,
            accounts: 0,
            string_chunks: 0,
            transfers: 0,
            updates: 0,
            expiries: 0,
            renewals: 0,
            key_runs: 0,
            handed_segments: 0,
            segment_shift: 0,
            resolutions: 0,
            timeouts: 0,
        }
    }

    /// Records the snapshot's segments hold, checked against the records it counts.
    fn handed_records(&self) -> Result<usize, DecodeError> {
        if self.handed_segments == 0 {
            // Written as zero without segments: anything else is damage.
            return if self.segment_shift == 0 { Ok(0) } else { fail("a segment size without segments") };
        }
        if !(SEGMENT_SHIFT_MIN..=SEGMENT_SHIFT_MAX).contains(&self.segment_shift) {
            return fail(format!("history segments of 2^{} records", self.segment_shift));
        }
        self.handed_segments
            .checked_mul(1 << self.segment_shift)
            .filter(|&records| records <= self.transfers)
            .ok_or_else(|| DecodeError("more records in history segments than in the ledger".into()))
    }

    /// The journal entries (log slots) the records fill, bounded by the snapshot's size: every
    /// record holds at least its 8-byte seq, except those in history segments.
    fn entries(&self, total_bytes: usize) -> Result<usize, DecodeError> {
        let handed = self.handed_records()?;
        let in_snapshot = self
            .assets
            .checked_add(self.accounts)
            .and_then(|n| n.checked_add(self.transfers - handed))
            .and_then(|n| n.checked_add(self.updates))
            .and_then(|n| n.checked_add(self.expiries))
            .and_then(|n| n.checked_add(self.renewals))
            .filter(|&n| {
                self.transfers < NONE as usize
                    && n <= total_bytes / 8
                    && self.string_chunks <= total_bytes
                    && self.key_runs <= n + handed
                    && self.resolutions <= handed
                    && self.timeouts <= handed
            })
            .ok_or_else(|| DecodeError("counts out of range".into()))?;
        Ok(in_snapshot + handed)
    }
}

/// Loads a snapshot's sections into a state, in the order they are written, checking every
/// reference between records as it goes.
struct Loader<'a> {
    input: PieceReader<'a>,
    state: State,
    entries: usize,
    counts: Counts,
    format: u32,
    /// Formats 1 to 3: the table of strings the records' spans point into.
    strings: Option<Strings>,
    history: Option<HistoryFiles>,
    /// The seq of every record that is not a transfer.
    others: Vec<(u64, LogEntry)>,
}

impl Loader<'_> {
    /// A record other than a transfer takes journal position `seq` (checked with the rest in
    /// `positions`).
    fn claim(&mut self, seq: u64, entry: LogEntry) {
        self.others.push((seq, entry));
    }

    fn assets(&mut self) -> Result<(), DecodeError> {
        for index in 0..self.counts.assets {
            let asset = self.input.item(|i| Ok(Asset { code: i.asset_code()?, scale: i.u8()?, seq: i.u64()?, timestamp: i.u64()? }))?;
            self.claim(asset.seq, LogEntry::Asset(index as u32));
            self.state.asset_index.insert(asset.code.clone(), index as u32);
            self.state.assets.push(asset);
        }
        Ok(())
    }

    fn accounts(&mut self) -> Result<(), DecodeError> {
        for index in 0..self.counts.accounts {
            let mut account = self.account(index)?;
            self.history(&mut account)?;
            let depth = account.parent.map_or(1, |p| usize::from(self.state.accounts[p as usize].depth) + 1);
            if depth > ACCOUNT_DEPTH_MAX {
                return fail(format!("account {} is {depth} levels deep; the limit is {ACCOUNT_DEPTH_MAX}", account.id));
            }
            account.depth = depth as u8;
            self.claim(account.created_seq, LogEntry::Account(index as u32));
            let state = &mut self.state;
            state.account_index.insert(account.id.clone(), index as u32);
            state.accounts_ordered.insert(account.id.clone(), index as u32);
            state.children.insert((account.parent.unwrap_or(crate::state::ROOTS), account.id.clone()));
            state.closed_accounts += usize::from(account.settings.closed);
            state.accounts.push(account);
        }
        Ok(())
    }

    /// An account's own item: everything but its history.
    fn account(&mut self, index: usize) -> Result<Account, DecodeError> {
        let (assets, entries, format) = (self.counts.assets, self.entries, self.format);
        self.input.item(|i| {
            let id = i.id()?;
            let asset = i.u32()?;
            let parent = match i.u32()? {
                NONE => None,
                parent if (parent as usize) < index => Some(parent),
                parent => return fail(format!("account {id} names parent {parent}, which is not an earlier account")),
            };
            if asset as usize >= assets {
                return fail(format!("account {id} names unknown asset {asset}"));
            }
            let settings = decode_settings(i, format)?;
            let created_settings = decode_settings(i, format)?;
            let totals = decode_totals(i)?;
            let created_seq = i.u64()?;
            let timestamp = i.u64()?;
            let history_len = i.u64()? as usize;
            if history_len > entries {
                return fail(format!("account {id} has more history than the ledger has entries"));
            }
            Ok(Account {
                id,
                asset,
                parent,
                depth: 0,
                settings,
                created_settings,
                totals,
                created_seq,
                timestamp,
                history: Vec::with_capacity(history_len),
                earlier_changes: 0,
                checkpoints: Vec::with_capacity(history_len / CHECKPOINT_INTERVAL),
                updates: Vec::new(),
            })
        })
    }

    /// An account's history (the seqs that changed it, in chunks) and its checkpoints.
    fn history(&mut self, account: &mut Account) -> Result<(), DecodeError> {
        while account.history.len() < account.history.capacity() {
            let take = (account.history.capacity() - account.history.len()).min(CHUNK_ITEMS);
            self.input.item(|i| {
                for _ in 0..take {
                    account.history.push(i.u64()?);
                }
                Ok(())
            })?;
        }
        if account.history.first() != Some(&account.created_seq) || !account.history.windows(2).all(|w| w[0] < w[1]) {
            return fail(format!("account {} has a history out of order", account.id));
        }
        for _ in 0..account.history.len() / CHECKPOINT_INTERVAL {
            account.checkpoints.push(self.input.item(decode_totals)?);
        }
        Ok(())
    }

    /// Formats 1 to 3: the table of strings.
    fn strings(&mut self) -> Result<(), DecodeError> {
        if self.format > 3 {
            return Ok(());
        }
        let mut chunks = Vec::with_capacity(self.counts.string_chunks.min(1 << 20));
        for _ in 0..self.counts.string_chunks {
            chunks.push(self.input.item(|i| {
                let len = i.u32()? as usize;
                Ok(i.take(len)?.to_vec())
            })?);
        }
        self.strings = Some(Strings::from_chunks(chunks).ok_or_else(|| DecodeError("a string chunk exceeds its size".into()))?);
        Ok(())
    }

    fn transfers(&mut self) -> Result<(), DecodeError> {
        let handed = self.counts.handed_records()?;
        // Only what the snapshot itself holds is reserved: the count of records in segments
        // is checked by reading them.
        self.state.reserve_transfers(self.counts.transfers - handed);
        if handed > 0 {
            let Some(history) = self.history.clone() else {
                return fail("the snapshot stands on history segments, and none were given to read them");
            };
            self.state.adopt_segments(history, self.counts.segment_shift, self.counts.handed_segments).map_err(DecodeError)?;
        }
        for index in handed..self.counts.transfers {
            let (expiry, record, text) = self.input.item(|i| decode_transfer(i, index, self.format))?;
            let (id, metadata) = match text {
                Stored::Inline(id, metadata) => (id, metadata),
                Stored::Table(span) => self.table_text(index, span)?,
            };
            self.check_transfer(index, &record)?;
            if let Some(expires_at) = expiry {
                if record.kind != RecordKind::Pending {
                    return fail(format!("transfer record {index} has a timeout but is not a hold"));
                }
                self.state.hold_expiry.insert(index as u32, expires_at);
                if record.hold_state == HoldState::Pending {
                    self.state.holds_by_expiry.insert((expires_at, index as u32));
                }
            }
            self.state.push_record(record, id.as_str(), metadata.as_ref().map_or("", Metadata::as_str));
        }
        Ok(())
    }

    /// Formats 1 to 3: a record's id and metadata from the table of strings.
    fn table_text(&self, index: usize, span: Span) -> Result<(Id, Option<Metadata>), DecodeError> {
        let strings = self.strings.as_ref().expect("formats with a table of strings load it first");
        let (Some(id), Some(metadata)) = (utf8(strings.first(span)), utf8(strings.second(span))) else {
            return fail(format!("transfer record {index} points outside the string table"));
        };
        let id = Id::parse_transfer(id).or_else(|e| fail(format!("transfer record {index} has an invalid id: {e}")))?;
        let metadata = (!metadata.is_empty())
            .then(|| Metadata::from_canonical(metadata))
            .transpose()
            .or_else(|e| fail(format!("transfer record {index} has invalid metadata: {e}")))?;
        Ok((id, metadata))
    }

    /// A transfer record names only known accounts and records.
    fn check_transfer(&self, index: usize, record: &TransferRecord) -> Result<(), DecodeError> {
        let accounts = self.counts.accounts as u32;
        let account_ok = |a: u32| a < accounts || (a == NONE && record.result != crate::ResultCode::Created);
        let related_ok = record.related == NONE || (record.related as usize) < self.counts.transfers;
        if !account_ok(record.debit) || !account_ok(record.credit) || !related_ok {
            return fail(format!("transfer record {index} names an unknown account or transfer"));
        }
        Ok(())
    }

    fn updates(&mut self) -> Result<(), DecodeError> {
        let (accounts, format) = (self.counts.accounts as u32, self.format);
        for index in 0..self.counts.updates {
            let update = self.input.item(|i| {
                let account = i.u32()?;
                if account >= accounts {
                    return fail(format!("update {index} names unknown account {account}"));
                }
                let (before, after) = (decode_settings(i, format)?, decode_settings(i, format)?);
                Ok(UpdateRecord { account, before, after, seq: i.u64()?, timestamp: i.u64()? })
            })?;
            self.claim(update.seq, LogEntry::Update(index as u32));
            self.state.accounts[update.account as usize].updates.push(index as u32);
            self.state.updates.push(update);
        }
        Ok(())
    }

    fn expiries(&mut self) -> Result<(), DecodeError> {
        for index in 0..self.counts.expiries {
            let expiry = self.input.item(|i| Ok(ExpiryRecord { hold: i.u32()?, seq: i.u64()?, timestamp: i.u64()? }))?;
            if expiry.hold as usize >= self.counts.transfers {
                return fail(format!("expiry {index} names unknown hold {}", expiry.hold));
            }
            self.claim(expiry.seq, LogEntry::Expiry(index as u32));
            self.state.expiries.push(expiry);
        }
        Ok(())
    }

    fn renewals(&mut self) -> Result<(), DecodeError> {
        for index in 0..self.counts.renewals {
            let renewal =
                self.input.item(|i| Ok(RenewalRecord { hold: i.u32()?, expires_at: i.u64()?, seq: i.u64()?, timestamp: i.u64()? }))?;
            let is_hold = |hold: TransferRecord| hold.kind == RecordKind::Pending && hold.result == crate::ResultCode::Created;
            let hold = (renewal.hold as usize) < self.state.records.len();
            if !hold || !is_hold(self.state.records.try_get(renewal.hold as usize).map_err(DecodeError)?) {
                return fail(format!("renewal {index} names {}, which is not a hold", renewal.hold));
            }
            self.claim(renewal.seq, LogEntry::Renewal(index as u32));
            self.state.renewals.push(renewal);
        }
        Ok(())
    }
}

impl Loader<'_> {
    /// How the handed-off holds stand: those resolved, and those with a timeout.
    fn handed_holds(&mut self) -> Result<(), DecodeError> {
        let (handed, transfers) = (self.counts.handed_records()? as u32, self.counts.transfers as u32);
        let mut previous = None;
        for _ in 0..self.counts.resolutions {
            let (hold, state, by) = self.input.item(|i| {
                let hold = i.u32()?;
                let state =
                    i.u8().and_then(|state| HoldState::from_u8(state).map_or_else(|| fail(format!("unknown hold state {state}")), Ok))?;
                Ok((hold, state, i.u32()?))
            })?;
            // An expired hold was resolved by no record; a posted or voided one by a later one.
            let by_ok = if state == HoldState::Expired { by == NONE } else { by > hold && by < transfers };
            if hold >= handed || previous.is_some_and(|previous| hold <= previous) || state == HoldState::Pending || !by_ok {
                return fail(format!("a resolution of record {hold} by record {by} is out of range or order"));
            }
            previous = Some(hold);
            self.state.records.restore_resolution(hold, state, by);
        }
        let mut previous = None;
        for _ in 0..self.counts.timeouts {
            let (hold, expires_at, pending) = self.input.item(|i| Ok((i.u32()?, i.u64()?, i.bool()?)))?;
            let out_of_order = previous.is_some_and(|previous| hold <= previous);
            if hold >= handed || out_of_order || pending == self.state.records.is_resolved(hold) {
                return fail(format!("a timeout of record {hold} is out of range or order, or pending when it was resolved"));
            }
            previous = Some(hold);
            self.state.hold_expiry.insert(hold, expires_at);
            if pending {
                self.state.holds_by_expiry.insert((expires_at, hold));
            }
        }
        Ok(())
    }

    /// Rebuilds the journal positions: every seq is claimed by exactly one record. Transfers
    /// are created in seq order, so they take, in order, the seqs no other record claims; the
    /// records in history segments come first, and each record in the snapshot must carry the
    /// seq it takes.
    fn positions(&mut self) -> Result<(), DecodeError> {
        let entries = self.entries as u64;
        let Some(positions) = Positions::from_others(entries, std::mem::take(&mut self.others)) else {
            return fail(format!("a seq is claimed twice or lies outside 1..={entries}"));
        };
        let handed = self.counts.handed_records()?;
        for (index, seq) in positions.transfer_seqs().enumerate().skip(handed) {
            let claimed = self.state.record_at(index as u32).seq;
            if claimed != seq {
                return fail(format!("transfer record {index} claims seq {claimed}, where seq {seq} is the next transfer's"));
            }
        }
        self.state.log = positions;
        Ok(())
    }

    fn key_runs(&mut self) -> Result<(), DecodeError> {
        for _ in 0..self.counts.key_runs {
            let (first, key) = self.input.item(|i| Ok((i.u64()?, i.option(Decoder::id)?)))?;
            if first == 0 || first > self.entries as u64 {
                return fail(format!("a key run begins at seq {first}, outside the journal"));
            }
            self.state.actors.restore_run(first, key.as_ref()).map_err(DecodeError)?;
        }
        Ok(())
    }
}

fn utf8(bytes: Option<&[u8]>) -> Option<&str> {
    bytes.and_then(|bytes| std::str::from_utf8(bytes).ok())
}

/// Where a decoded record's id and metadata are.
enum Stored {
    Inline(Id, Option<Metadata>),
    /// Formats 1 to 3: in the table of strings.
    Table(Span),
}

/// A transfer record, its id and metadata, and its expiry if it is a hold with a timeout.
fn decode_transfer(i: &mut Decoder<'_>, index: usize, format: u32) -> Result<(Option<u64>, TransferRecord, Stored), DecodeError> {
    let expiry = i.option(Decoder::u64)?;
    let amount = match i.u128()? {
        amount if amount <= crate::state::TOTAL_MAX => amount,
        _ => return fail(format!("transfer record {index} has an amount beyond the limit")),
    };
    let table = if format <= 3 { Some(Span(i.u64()?)) } else { None };
    let record = TransferRecord {
        amount,
        text: Span::default(),
        seq: i.u64()?,
        timestamp: i.u64()?,
        fingerprint: i.u64()?,
        debit: i.u32()?,
        credit: i.u32()?,
        related: i.u32()?,
        kind: i.u8().and_then(|kind| RecordKind::from_u8(kind).map_or_else(|| fail(format!("unknown transfer kind {kind}")), Ok))?,
        result: i.result_code()?,
        hold_state: i.u8().and_then(|state| HoldState::from_u8(state).map_or_else(|| fail(format!("unknown hold state {state}")), Ok))?,
    };
    let stored = match table {
        Some(span) => Stored::Table(span),
        None => Stored::Inline(i.transfer_id()?, i.option(Decoder::metadata)?),
    };
    Ok((expiry, record, stored))
}
