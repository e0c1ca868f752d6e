"""Tally's Python client: ``Tally`` (blocking) and ``AsyncTally`` (asyncio).

    from tally_ledger import Tally, InsufficientFunds

    tally = Tally("http://127.0.0.1:7420")
    tally.transfer("withdrawal-1842", debit="alice", credit="bank:outgoing", amount="60.00")

Amounts go in as ``Decimal``, ``int`` or decimal strings and come back as ``Decimal``; a float
raises ``TypeError``. Every failure is a ``TallyError``; see ``docs/python.md``.
"""

from ._amounts import Amount
from ._async import AsyncHold, AsyncLease, AsyncTally
from ._calls import BATCH_EVENTS_MAX, PAGE_LIMIT_MAX
from ._errors import (
    AccountClosed,
    EventFailed,
    Forbidden,
    HoldNotPending,
    IdConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidRequest,
    LeaseLost,
    LimitExceeded,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    TallyError,
    TransferFailed,
    Unauthorized,
    Unavailable,
    VersionMismatch,
)
from ._models import Account, Health, JournalEntry, Leg, Result, Transfer
from ._sync import Hold, Lease, Tally

__all__ = [
    "BATCH_EVENTS_MAX",
    "PAGE_LIMIT_MAX",
    "Account",
    "AccountClosed",
    "Amount",
    "AsyncHold",
    "AsyncLease",
    "AsyncTally",
    "EventFailed",
    "Forbidden",
    "Health",
    "Hold",
    "HoldNotPending",
    "IdConflict",
    "InsufficientFunds",
    "InvalidAmount",
    "InvalidRequest",
    "JournalEntry",
    "Lease",
    "LeaseLost",
    "Leg",
    "LimitExceeded",
    "NotFound",
    "OutcomeUnknown",
    "RateLimited",
    "Result",
    "Tally",
    "TallyError",
    "Transfer",
    "TransferFailed",
    "Unauthorized",
    "Unavailable",
    "VersionMismatch",
]
