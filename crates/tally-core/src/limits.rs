//! Every bound Tally enforces, in one place. The server, the engines and the docs all read
//! these constants, so a limit can never differ between the edge and the core.

/// Events in one request (one `POST` body). Chosen so a request of maximal transfers with
/// short ids stays well under the request body limit.
pub const BATCH_EVENTS_MAX: usize = 8_190;

/// Bytes in an account or transfer id.
pub const ID_LENGTH_MAX: usize = 128;

/// Bytes in an asset code.
pub const ASSET_CODE_LENGTH_MAX: usize = 32;

/// Decimal places an asset may have. 10^18 still leaves 10^20 whole units below `i128::MAX`.
pub const SCALE_MAX: u8 = 18;

/// Bytes of metadata (a serialized JSON object) on an account or transfer.
pub const METADATA_BYTES_MAX: usize = 4_096;

/// Levels in an account tree, the root included. Bounds are checked on every ancestor, so
/// this also bounds the work of one transfer.
pub const ACCOUNT_DEPTH_MAX: usize = 16;

/// Characters in a decimal amount string, sign and point included.
pub const AMOUNT_LENGTH_MAX: usize = 48;

/// A hold may not outlive this (about 10 years), so `timestamp + timeout` cannot overflow.
pub const HOLD_TIMEOUT_MS_MAX: u64 = 10 * 366 * 24 * 3_600 * 1_000;

/// Items in one page of a listing.
pub const PAGE_LIMIT_MAX: usize = 1_000;
