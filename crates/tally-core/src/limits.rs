//! Every bound Tally enforces, in one place. The server, the stores, the formats and the
//! docs all read these constants, so a limit can never differ between the edge and the core,
//! and each limit is related at compile time to the next one it feeds: a request's fields
//! bound its encoding, which bounds a commit, which bounds a batch record, which bounds a
//! journal record and a dump frame. (Polling intervals, and the retry counts of internal
//! operations that bound no input, such as re-reading a damaged journal record or racing
//! another node's migration, stay beside the code they tune, each a named constant.)

pub use crate::codec::{BATCH_HEADER_BYTES, EVENT_ENCODED_BYTES_MAX, REQUEST_ENCODED_BYTES_MAX};
pub use crate::snapshot::{SNAPSHOT_ITEM_BYTES_MAX, SNAPSHOT_PIECE_BYTES};
pub use crate::state::TOTAL_MAX;

// ---- One event's fields ----

/// Bytes in an account or transfer id.
pub const ID_LENGTH_MAX: usize = 128;

/// Bytes in an asset code.
pub const ASSET_CODE_LENGTH_MAX: usize = 32;

/// Decimal places an asset may have. 10^18 still leaves 10^20 whole units below `i128::MAX`.
pub const SCALE_MAX: u8 = 18;

/// Bytes of metadata (a canonical JSON object) on an account or transfer.
pub const METADATA_BYTES_MAX: usize = 4_096;

/// Levels of objects and arrays in metadata, the outer object included: bounds the work
/// (and the recursion) of reading it.
pub const METADATA_DEPTH_MAX: usize = 32;

/// Levels in an account tree, the root included. Bounds are checked on every ancestor, so
/// this also bounds the work of one transfer.
pub const ACCOUNT_DEPTH_MAX: usize = 16;

/// Characters in a decimal amount string, sign and point included.
pub const AMOUNT_LENGTH_MAX: usize = 48;

/// A hold may not outlive this (about 10 years), so `timestamp + timeout` cannot overflow.
pub const HOLD_TIMEOUT_MS_MAX: u64 = 10 * 366 * 24 * 3_600 * 1_000;

/// Entries in one allocation, so a leg's index takes at most three digits.
pub const ALLOCATION_SHARES_MAX: usize = 1_000;

/// The largest weight of one allocation entry. With `ALLOCATION_SHARES_MAX` entries the total
/// weight stays below 2^40, so splitting never overflows (see `allocation::split`).
pub const ALLOCATION_WEIGHT_MAX: u64 = 1_000_000_000;

/// Characters a leg's id adds to its allocation's id: "/" and the leg's index. A leg's id is
/// the one id longer than `ID_LENGTH_MAX`; the `/` keeps it apart from every id a client gives.
pub const LEG_SUFFIX_LENGTH_MAX: usize = 1 + (ALLOCATION_SHARES_MAX - 1).ilog10() as usize + 1;

// ---- One request ----

/// Events in one request (one `POST` body).
pub const BATCH_EVENTS_MAX: usize = 8_190;

/// Bytes in one request body. It bounds the work of parsing; what a request costs the writer
/// is bounded by `REQUEST_ENCODED_BYTES_MAX`, derived from the field limits above.
pub const REQUEST_BODY_BYTES_MAX: usize = 32 << 20;

/// Journal entries one request may create. An allocation's legs count towards the event limit
/// already; a post or void that names an allocation adds its legs here, and fails with
/// `too_many_entries` if they would take the request past this.
pub const REQUEST_ENTRIES_MAX: usize = 2 * BATCH_EVENTS_MAX;

/// Items in one page of a listing, and the default when none is asked for.
pub const PAGE_LIMIT_MAX: usize = 1_000;
pub const PAGE_LIMIT_DEFAULT: usize = 100;

/// The longest a journal reader's long poll waits for a new entry.
pub const JOURNAL_WAIT_MS_MAX: u64 = 30_000;

/// The highest journal position a reader may name: positions are stored as PostgreSQL's
/// signed 64-bit `bigint`.
pub const SEQ_MAX: u64 = i64::MAX as u64;

/// The server samples its writer's progress this often and keeps this many samples (ten
/// minutes) for `/v1/stats` and the console's charts.
pub const STATS_INTERVAL_MS: u64 = 1_000;
pub const STATS_SAMPLES_MAX: usize = 600;

/// Journal pages read and rendered at once; more readers wait their turn (without holding a
/// thread), so hundreds woken by one commit cannot crowd out the answers to writes.
pub const JOURNAL_PAGES_AT_ONCE: usize = 2;

// ---- The server ----

/// Requests served at once, on all routes together; beyond this the server answers 503 at
/// once instead of queueing without bound.
pub const IN_FLIGHT_REQUESTS_MAX: usize = 4_096;

/// The longest any request may take, long polls included. Writes have deadlines of their
/// own inside this (`BODY_READ_TIMEOUT_MS`, then `WRITE_WAIT_MS`), so this one only ever
/// ends a read, which applies nothing.
pub const REQUEST_TIMEOUT_MS: u64 = 60_000;

/// The longest a write waits for the writer once its body has arrived. Still queued then, it
/// is withdrawn (503, nothing applied); already taken by the writer, it answers 504
/// `outcome_unknown` (it may be applied: resend it with the same ids).
pub const WRITE_WAIT_MS: u64 = 25_000;

/// Open connections, by default: each holds a descriptor and buffers, so a flood of idle
/// ones must meet a cap rather than the process's descriptor limit. The server lowers it
/// further to leave `DESCRIPTORS_RESERVED` below that limit.
pub const CONNECTIONS_MAX: usize = 8_192;

/// Descriptors the server never gives to connections: journal segments, snapshots, the
/// key file, PostgreSQL connections.
pub const DESCRIPTORS_RESERVED: usize = 256;

/// The longest a connection may take to send a request's headers, counted from when it
/// opened or its previous answer was sent: a client sending headers byte by byte, and a
/// kept-alive connection left idle, are both closed after this.
pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;

/// Bytes of a request's line and headers together; beyond this 431 (414 for the line).
pub const REQUEST_HEAD_BYTES_MAX: usize = 64 << 10;

/// Header fields in one request; beyond this 431.
pub const REQUEST_HEADERS_MAX: usize = 100;

/// The longest a request's body may take to arrive once its headers have: a body that
/// trickles in is answered 408 and frees what it held.
pub const BODY_READ_TIMEOUT_MS: u64 = 30_000;

/// Bytes of request bodies held in memory while they arrive, all connections together:
/// beyond this a body is answered 503 ("retry later") rather than buffered.
pub const BODY_BYTES_BUFFERED_MAX: usize = 512 << 20;

/// A writer that has held one commit this long is reported `stalled` by `/healthz` (503), so
/// a balancer can send traffic elsewhere while the disk or database is stuck.
pub const WRITER_STALLED_MS: u64 = 5_000;

// ---- API keys ----

/// Keys a ledger holds, revoked ones included (they are kept, so a ledger that ever had a
/// key never goes back to answering without one).
pub const KEYS_MAX: usize = 10_000;

/// Account prefixes one key may be confined to.
pub const KEY_PREFIXES_MAX: usize = 16;

/// Bytes in a key's name.
pub const KEY_NAME_LENGTH_MAX: usize = 64;

/// How often a server reads its keys again, so a key created or revoked elsewhere (another
/// node, `tally keys` on the database) takes effect within this.
pub const KEYS_REFRESH_MS: u64 = 1_000;

// ---- The write queue and one commit ----

/// Requests waiting for a store's writer. A full queue answers at once ("retry later")
/// instead of letting latency and memory grow without bound.
pub const QUEUE_REQUESTS_MAX: usize = 1_024;

/// Encoded bytes waiting for a store's writer, all requests together: with the request
/// count above, this bounds the memory a queue holds whatever the requests are like.
pub const QUEUE_BYTES_MAX: usize = 256 << 20;

/// The most encoded request bytes one commit takes. The writer measures each request before
/// taking it, so a commit never exceeds this, whatever is queued.
pub const COMMIT_BYTES_MAX: usize = 64 << 20;

/// The largest batch record: the payload of one journal record, one PostgreSQL batch row,
/// one dump frame.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 128 << 20;

// ---- The embedded store ----

/// A journal segment is closed once it reaches this size, so no file grows without bound and
/// recovery can skip whole segments that a snapshot covers.
pub const SEGMENT_BYTES_TARGET: u64 = 256 << 20;

/// Snapshots kept; older ones are removed once a new one is durable.
pub const SNAPSHOTS_KEPT: usize = 2;

/// After replaying this many records at start, write a snapshot so the next start is quick.
pub const SNAPSHOT_AFTER_REPLAY_RECORDS: u64 = 64;

/// The most memory that pages of handed-off history (transfer records and their text, read
/// back for idempotency checks and reads of old transfers) hold at once.
pub const HISTORY_CACHE_BYTES: usize = 64 << 20;

// ---- Backups ----

/// A backup checksums each file in chunks of this size, so bringing a growing journal
/// segment up to date rehashes at most one chunk of what was already copied.
pub const BACKUP_CHUNK_BYTES: u64 = 16 << 20;

/// The largest backup manifest read: one line of chunk digests per 16 MiB of journal, so
/// this covers some 13 TB of history (a pretty-printed digest takes about 80 bytes).
pub const BACKUP_MANIFEST_BYTES_MAX: usize = 64 << 20;

/// How long a backup request may wait for a commit after the seq it names (`--follow`).
pub const BACKUP_WAIT_MS_MAX: u64 = 10_000;

/// A backup kept current (`tally backup --follow`) copies at most this often: each copy costs
/// a few fsyncs on the backup's disk, and copying every commit of a busy ledger would cost
/// more than the second of lag this saves.
pub const BACKUP_FOLLOW_INTERVAL_MS: u64 = 1_000;

/// How long a backup request waits for its copy before answering "still running" (the copy
/// goes on; asking again waits for it again).
pub const BACKUP_ANSWER_WAIT_MS: u64 = 40_000;

// ---- The PostgreSQL store ----

/// A node's writer stops taking requests into one transaction once they hold this many
/// events. Bigger transactions share the round trips better but hold their locks longer.
pub const TRANSACTION_EVENTS_MAX: usize = 16_384;

/// Due holds one PostgreSQL batch loads and may expire; the rest wait for the next batch.
pub const DUE_HOLDS_MAX: usize = 8_192;

/// Attempts of one PostgreSQL batch before its requests hear that the store is too contended.
pub const ATTEMPTS_MAX: u32 = 12;

/// Read connections per PostgreSQL node.
pub const READ_CONNECTIONS: usize = 8;

/// How long one attempt to connect to PostgreSQL may take, unless the connection string sets
/// `connect_timeout`: a host that does not answer (not only one that refuses) is given up on,
/// and the next host of a multi-host string is tried.
pub const PG_CONNECT_TIMEOUT_MS: u64 = 5_000;

/// How long one attempt of a PostgreSQL batch transaction (or any other statement of the
/// writer) may run before the writer gives up on it: it asks the server to cancel it (the
/// transaction is rolled back unless its COMMIT was already received), replaces the
/// connection and answers `outcome_unknown`. It bounds a writer stuck on a server that stopped
/// answering, or on a synchronous standby that is gone.
pub const PG_BATCH_TIMEOUT_MS: u64 = 20_000;

/// Accounts whose ancestors a PostgreSQL writer remembers; beyond this it forgets them all
/// and asks again.
pub const LINEAGES_MAX: usize = 1 << 18;

const _: () = assert!(SEGMENT_BYTES_TARGET as usize >= RECORD_PAYLOAD_BYTES_MAX, "a segment holds a maximal record");
const _: () = assert!(TRANSACTION_EVENTS_MAX >= BATCH_EVENTS_MAX, "a maximal request fits one transaction");
const _: () = assert!(REQUEST_ENCODED_BYTES_MAX <= QUEUE_BYTES_MAX, "a maximal request fits an empty queue");
const _: () = assert!(BATCH_HEADER_BYTES + REQUEST_ENCODED_BYTES_MAX <= COMMIT_BYTES_MAX, "a maximal request fits one commit");
const _: () = assert!(BATCH_HEADER_BYTES + COMMIT_BYTES_MAX <= RECORD_PAYLOAD_BYTES_MAX, "a full commit fits one record");
const _: () = assert!(RECORD_PAYLOAD_BYTES_MAX <= u32::MAX as usize, "record lengths are u32 on disk");
const _: () = assert!(JOURNAL_WAIT_MS_MAX < REQUEST_TIMEOUT_MS, "a long poll ends before its request times out");
const _: () = assert!(
    BACKUP_WAIT_MS_MAX + BACKUP_ANSWER_WAIT_MS < REQUEST_TIMEOUT_MS,
    "a backup request answers (done or still running) before its request times out"
);
const _: () = assert!(
    BODY_READ_TIMEOUT_MS + WRITE_WAIT_MS < REQUEST_TIMEOUT_MS,
    "a write meets its own deadlines before the request's, so its answer says what became of it"
);
const _: () = assert!(
    PG_BATCH_TIMEOUT_MS < WRITE_WAIT_MS,
    "an attempt of a PostgreSQL batch that hangs is given up on before its requests' own deadline"
);
const _: () = assert!(REQUEST_BODY_BYTES_MAX <= BODY_BYTES_BUFFERED_MAX, "a maximal body fits when nothing else is arriving");
const _: () = assert!(PAGE_LIMIT_DEFAULT <= PAGE_LIMIT_MAX);
const _: () = assert!(ACCOUNT_DEPTH_MAX <= u8::MAX as usize, "depths are u8 in rows and snapshots");
const _: () = assert!(ID_LENGTH_MAX <= METADATA_BYTES_MAX && METADATA_BYTES_MAX <= u16::MAX as usize, "strings have u16 lengths");
const _: () = assert!(LEG_SUFFIX_LENGTH_MAX == 4, "legs are /0 to /999");
const _: () = assert!(
    (ALLOCATION_SHARES_MAX as u128) * (ALLOCATION_WEIGHT_MAX as u128) < (1 << 40),
    "a split's remainder times a weight fits a u128 with room to spare"
);
const _: () = assert!(
    REQUEST_ENTRIES_MAX >= BATCH_EVENTS_MAX - 1 + ALLOCATION_SHARES_MAX,
    "one post or void of the largest allocation always fits a request"
);
