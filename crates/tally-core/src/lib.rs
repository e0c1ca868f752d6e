//! The Tally ledger as a pure state machine.
//!
//! `State::apply(request, timestamp)` is the only way the ledger changes. It does no I/O,
//! reads no clock and draws no random numbers, so the embedded engine can replay its journal
//! into exactly the state it had, the PostgreSQL engine can run the same rules on the rows it
//! locked, and tests can compare either against a simple model.
//!
//! Amounts are integers of minor units (`u128`, at most `TOTAL_MAX`), converted from and to
//! decimal strings with the asset's scale at the edges; there are no floats anywhere.

pub mod actors;
pub mod allocation;
pub mod amount;
pub mod batch;
pub mod chunked;
pub mod codec;
pub mod event;
pub mod id;
pub mod id_runs;
pub mod limits;
pub mod memory;
pub mod metadata;
mod positions;
pub mod records;
pub mod slice;
pub mod snapshot;
pub mod state;
pub mod view;

pub use amount::{format_minor, AmountError, Decimal};
pub use event::{
    AccountPatch, AccountUpdate, HoldRenewal, Moved, NewAccount, NewAsset, NewTransfer, Outcome, Request, ResultCode, Share, TransferKind,
};
pub use id::{AssetCode, Id, NameError};
pub use metadata::{Metadata, MetadataError};
pub use slice::{AccountChange, AccountRow, Changes, Expiry, Renewal, Resolution, SettingsChange, TransferRow};
pub use state::{Asset, HoldState, RecordKind, Settings, State, Totals, TOTAL_MAX};
pub use view::{AccountView, ChangeCause, HistoryEntry, JournalEntry, TransferDetail, TransferState, TransferView, Under};
