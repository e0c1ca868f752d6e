//! A whole state as bytes, so a restart loads it instead of replaying the journal from the
//! start. Only primary data is stored; every index (and the log, which is the union of all
//! records ordered by seq) is rebuilt on load, which also proves the data consistent: each
//! seq must be claimed by exactly one record.

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::state::{
    Account, Asset, ExpiryRecord, HoldState, LogEntry, RecordKind, Settings, Span, State, Totals, TransferRecord, UpdateRecord,
};

const NONE: u32 = u32::MAX;

fn fail<T>(what: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(what.into()))
}

fn encode_settings(out: &mut Encoder, settings: &Settings) {
    out.option(settings.min_balance, Encoder::i128);
    out.option(settings.max_balance, Encoder::i128);
    out.option(settings.metadata.as_deref(), Encoder::str);
}

fn decode_settings(input: &mut Decoder<'_>) -> Result<Settings, DecodeError> {
    Ok(Settings {
        min_balance: input.option(Decoder::i128)?,
        max_balance: input.option(Decoder::i128)?,
        metadata: input.option(Decoder::metadata)?,
    })
}

/// Reads a count and refuses one larger than the bytes left could possibly hold.
fn count(input: &mut Decoder<'_>, remaining: usize, min_item_bytes: usize) -> Result<usize, DecodeError> {
    let count = input.u64()? as usize;
    if count > remaining / min_item_bytes.max(1) {
        return fail(format!("count {count} exceeds what the snapshot can hold"));
    }
    Ok(count)
}

impl State {
    pub fn encode_snapshot(&self, out: &mut Encoder) {
        out.u64(self.last_timestamp());
        out.u64(self.assets.len() as u64);
        for asset in &self.assets {
            out.str(asset.code.as_str());
            out.u8(asset.scale);
            out.u64(asset.seq);
            out.u64(asset.timestamp);
        }
        out.u64(self.accounts.len() as u64);
        for account in &self.accounts {
            out.str(account.id.as_str());
            out.u32(account.asset);
            out.u32(account.parent.unwrap_or(NONE));
            encode_settings(out, &account.settings);
            encode_settings(out, &account.created_settings);
            let totals = &account.totals;
            for total in [totals.debits_posted, totals.credits_posted, totals.debits_pending, totals.credits_pending] {
                out.u128(total);
            }
            out.u64(account.created_seq);
            out.u64(account.timestamp);
            out.u64(account.history.len() as u64);
            for &seq in &account.history {
                out.u64(seq);
            }
        }
        out.u64(self.strings.len() as u64);
        out.bytes.extend_from_slice(&self.strings);
        out.u64(self.transfers.len() as u64);
        for record in &self.transfers {
            out.u128(record.amount);
            out.u64(record.id.0);
            out.u64(record.metadata.0);
            out.u64(record.seq);
            out.u64(record.timestamp);
            out.u64(record.expires_at);
            out.u64(record.fingerprint);
            out.u32(record.debit);
            out.u32(record.credit);
            out.u32(record.related);
            out.u8(record.kind as u8);
            out.u8(record.result as u8);
            out.u8(record.hold_state as u8);
        }
        out.u64(self.updates.len() as u64);
        for update in &self.updates {
            out.u32(update.account);
            encode_settings(out, &update.before);
            encode_settings(out, &update.after);
            out.u64(update.seq);
            out.u64(update.timestamp);
        }
        out.u64(self.expiries.len() as u64);
        for expiry in &self.expiries {
            out.u32(expiry.hold);
            out.u64(expiry.seq);
            out.u64(expiry.timestamp);
        }
    }

    pub fn decode_snapshot(bytes: &[u8]) -> Result<State, DecodeError> {
        let mut input = Decoder::new(bytes);
        let mut state = State::new();
        let last_timestamp = input.u64()?;
        let mut claims: Vec<(u64, LogEntry)> = Vec::new();

        for index in 0..count(&mut input, bytes.len(), 19)? {
            let asset = Asset { code: input.asset_code()?, scale: input.u8()?, seq: input.u64()?, timestamp: input.u64()? };
            claims.push((asset.seq, LogEntry::Asset(index as u32)));
            state.asset_index.insert(asset.code.clone(), index as u32);
            state.assets.push(asset);
        }
        for index in 0..count(&mut input, bytes.len(), 100)? {
            let id = input.id()?;
            let asset = input.u32()?;
            let parent = match input.u32()? {
                NONE => None,
                parent if (parent as usize) < index => Some(parent),
                parent => return fail(format!("account {id} names parent {parent}, which is not an earlier account")),
            };
            if asset as usize >= state.assets.len() {
                return fail(format!("account {id} names unknown asset {asset}"));
            }
            let settings = decode_settings(&mut input)?;
            let created_settings = decode_settings(&mut input)?;
            let totals = Totals {
                debits_posted: input.u128()?,
                credits_posted: input.u128()?,
                debits_pending: input.u128()?,
                credits_pending: input.u128()?,
            };
            let created_seq = input.u64()?;
            let timestamp = input.u64()?;
            let history = (0..count(&mut input, bytes.len(), 8)?).map(|_| input.u64()).collect::<Result<Vec<_>, _>>()?;
            if history.first() != Some(&created_seq) || !history.windows(2).all(|w| w[0] < w[1]) {
                return fail(format!("account {id} has a history out of order"));
            }
            let depth = parent.map_or(1, |p: u32| state.accounts[p as usize].depth + 1);
            claims.push((created_seq, LogEntry::Account(index as u32)));
            state.account_index.insert(id.clone(), index as u32);
            state.accounts_ordered.insert(id.clone(), index as u32);
            if let Some(parent) = parent {
                state.children.insert((parent, id.clone()));
            }
            state.accounts.push(Account { id, asset, parent, depth, settings, created_settings, totals, created_seq, timestamp, history });
        }
        let strings_len = count(&mut input, bytes.len(), 1)?;
        state.strings = input.take(strings_len)?.to_vec();
        let accounts = state.accounts.len() as u32;
        let transfers = count(&mut input, bytes.len(), 79)?;
        state.transfers.reserve_exact(transfers);
        for index in 0..transfers {
            let record = TransferRecord {
                amount: input.u128()?,
                id: Span(input.u64()?),
                metadata: Span(input.u64()?),
                seq: input.u64()?,
                timestamp: input.u64()?,
                expires_at: input.u64()?,
                fingerprint: input.u64()?,
                debit: input.u32()?,
                credit: input.u32()?,
                related: input.u32()?,
                kind: match input.u8()? {
                    0 => RecordKind::Direct,
                    1 => RecordKind::Pending,
                    2 => RecordKind::Post,
                    3 => RecordKind::Void,
                    other => return fail(format!("unknown transfer kind {other}")),
                },
                result: input.result_code()?,
                hold_state: match input.u8()? {
                    0 => HoldState::Pending,
                    1 => HoldState::Posted,
                    2 => HoldState::Voided,
                    3 => HoldState::Expired,
                    other => return fail(format!("unknown hold state {other}")),
                },
            };
            for span in [record.id, record.metadata] {
                let text = state.strings.get(span.offset()..span.offset() + span.len());
                if text.is_none_or(|t| std::str::from_utf8(t).is_err()) {
                    return fail(format!("transfer record {index} points outside the string table"));
                }
            }
            let account_ok = |a: u32| a < accounts || (a == NONE && record.result != crate::ResultCode::Created);
            let related_ok = record.related == NONE || (record.related as usize) < transfers;
            if !account_ok(record.debit) || !account_ok(record.credit) || !related_ok {
                return fail(format!("transfer record {index} names an unknown account or transfer"));
            }
            if record.kind == RecordKind::Pending && record.hold_state == HoldState::Pending && record.expires_at != 0 {
                state.holds_by_expiry.insert((record.expires_at, index as u32));
            }
            claims.push((record.seq, LogEntry::Transfer(index as u32)));
            state.transfers.push(record);
            state.index_transfer(index as u32);
        }
        for index in 0..count(&mut input, bytes.len(), 30)? {
            let account = input.u32()?;
            if account >= accounts {
                return fail(format!("update {index} names unknown account {account}"));
            }
            let update = UpdateRecord {
                account,
                before: decode_settings(&mut input)?,
                after: decode_settings(&mut input)?,
                seq: input.u64()?,
                timestamp: input.u64()?,
            };
            claims.push((update.seq, LogEntry::Update(index as u32)));
            state.updates.push(update);
        }
        for index in 0..count(&mut input, bytes.len(), 20)? {
            let expiry = ExpiryRecord { hold: input.u32()?, seq: input.u64()?, timestamp: input.u64()? };
            if expiry.hold as usize >= state.transfers.len() {
                return fail(format!("expiry {index} names unknown hold {}", expiry.hold));
            }
            claims.push((expiry.seq, LogEntry::Expiry(index as u32)));
            state.expiries.push(expiry);
        }
        if !input.is_empty() {
            return fail("trailing bytes after the snapshot");
        }
        let mut log = vec![None; claims.len()];
        for (seq, entry) in claims {
            match log.get_mut((seq as usize).wrapping_sub(1)) {
                Some(slot @ None) => *slot = Some(entry),
                _ => return fail(format!("seq {seq} is claimed twice or lies outside 1..={}", state_len(&state))),
            }
        }
        state.log = log.into_iter().map(|e| e.expect("every slot was claimed exactly once")).collect();
        state.restore_clock(last_timestamp);
        state.check_invariants().map_err(DecodeError)?;
        Ok(state)
    }
}

fn state_len(state: &State) -> usize {
    state.assets.len() + state.accounts.len() + state.transfers.len() + state.updates.len() + state.expiries.len()
}
