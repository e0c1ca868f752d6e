"""Every failure the client raises. All derive from ``TallyError``.

An event the ledger decided against (a transfer that would overdraw, a hold already posted)
raises an ``EventFailed`` subclass carrying the result code and the result. A request the API
refused before anything was applied raises ``InvalidRequest``, ``Unauthorized`` or
``Forbidden``. When the ledger could not be reached or was busy after every retry,
``Unavailable`` says nothing was applied; ``OutcomeUnknown`` says it may have been, and that
sending the same request again, with the same ids, is safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import Result


class TallyError(Exception):
    """Anything that went wrong talking to the ledger."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class InvalidRequest(TallyError, ValueError):
    """400: a field the API refused (``field`` names it, such as ``transfers[0].amount``).
    Nothing was applied."""

    def __init__(self, message: str, *, field: str | None, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message, status=status, code=code)
        self.field = field


class Unauthorized(TallyError):
    """401: no valid API key (missing, unknown, revoked or expired)."""


class Forbidden(TallyError):
    """403: the key's scope or accounts do not allow this (``field`` names what)."""

    def __init__(self, message: str, *, field: str | None, status: int = 403, code: str = "forbidden") -> None:
        super().__init__(message, status=status, code=code)
        self.field = field


class Unavailable(TallyError):
    """The ledger was unreachable or busy on every attempt; nothing was applied."""


class RateLimited(Unavailable):
    """429: the key made more requests than its rate allows, on every attempt."""


class OutcomeUnknown(TallyError):
    """The request reached the ledger but no answer came back: it may have been applied.
    Send it again with the same ids: an id is decided once, so it is never applied twice."""


class LeaseLost(TallyError):
    """A lease could not be renewed in time: another holder may have it now. Stop working, and
    never write with its fencing token (the protected store refuses it anyway)."""


class EventFailed(TallyError):
    """The ledger decided against an event: ``code`` is the result code, ``result`` the result
    (with the ``seq`` that decided it; a failed transfer is journaled too) and ``event`` what was
    sent, in the API's form (amounts as decimal strings)."""

    def __init__(self, result: Result, event: Mapping[str, Any] | None = None, message: str | None = None) -> None:
        super().__init__(message or f"{result.id}: {result.result}", code=result.result)
        self.result = result
        self.event = event


TransferFailed = EventFailed
"""The name the transfer methods document; the same class as ``EventFailed``."""


class InsufficientFunds(EventFailed):
    """``exceeds_min_balance``: the debit side (or an ancestor) would fall below its minimum."""


class LimitExceeded(EventFailed):
    """``exceeds_max_balance``: the credit side (or an ancestor) would rise above its maximum."""


class VersionMismatch(EventFailed):
    """``version_mismatch``: an account (or a hold, for a renewal) changed since you read it."""


class HoldNotPending(EventFailed):
    """``pending_already_posted``, ``pending_already_voided`` or ``pending_expired``."""


class IdConflict(EventFailed):
    """``exists_with_different_fields``: the id was used before for something else."""


class NotFound(EventFailed, LookupError):
    """``account_not_found``, ``asset_not_found``, ``parent_not_found`` or ``pending_not_found``."""


class InvalidAmount(EventFailed, ValueError):
    """``invalid_amount``: more decimals than the asset's scale, or not more than zero. The
    ledger records the failed transfer (an id is decided once); nothing moved."""

    def __init__(self, result: Result, event: Mapping[str, Any] | None = None) -> None:
        what = "an amount or bound has more decimals than the asset's scale, or an amount is not positive"
        super().__init__(result, event, f"{result.id}: invalid_amount: {what}")


class AccountClosed(EventFailed):
    """``account_closed``: an account involved (or one above it) is closed."""


_BY_CODE: dict[str, type[EventFailed]] = {
    "exceeds_min_balance": InsufficientFunds,
    "exceeds_max_balance": LimitExceeded,
    "version_mismatch": VersionMismatch,
    "pending_already_posted": HoldNotPending,
    "pending_already_voided": HoldNotPending,
    "pending_expired": HoldNotPending,
    "exists_with_different_fields": IdConflict,
    "account_not_found": NotFound,
    "asset_not_found": NotFound,
    "parent_not_found": NotFound,
    "pending_not_found": NotFound,
    "account_closed": AccountClosed,
    "invalid_amount": InvalidAmount,
}


def event_failed(result: Result, event: Mapping[str, Any] | None = None) -> EventFailed:
    """The exception for a result that is not a success."""
    return _BY_CODE.get(result.result, EventFailed)(result, event)
