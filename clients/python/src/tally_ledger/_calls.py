"""The API's operations, apart from how they are sent: each builds a ``Call`` (method, path,
body, and how to read the answer), which ``Tally`` and ``AsyncTally`` send alike. Retries and
the mapping of failures to exceptions live here too, so the two clients cannot disagree."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from . import _json
from ._amounts import Amount, to_wire
from ._errors import (
    Forbidden,
    InvalidRequest,
    OutcomeUnknown,
    RateLimited,
    TallyError,
    Unauthorized,
    Unavailable,
    event_failed,
)
from ._models import Account, Health, JournalEntry, Result, Transfer

T = TypeVar("T")

#: Most events one request may carry (the server's `BATCH_EVENTS_MAX`).
BATCH_EVENTS_MAX = 8190
#: Most items one page holds (the server's `PAGE_LIMIT_MAX`).
PAGE_LIMIT_MAX = 1000
#: The longest a journal request waits for an entry (the server's `JOURNAL_WAIT_MS_MAX`).
JOURNAL_WAIT_MAX = 30.0

_UNSET: Any = object()


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[Any], T]
    params: Mapping[str, str | int] | None = None
    body: bytes | None = None
    #: A 404 answers ``None`` (an account or transfer that does not exist).
    absent_is_none: bool = False
    #: Seconds to wait for the answer beyond the client's timeout (a long poll).
    extra_wait: float = 0.0
    #: Statuses besides 2xx whose body is the answer (`/healthz` answers 503 when stalled).
    also_ok: frozenset[int] = frozenset()

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    @property
    def resendable(self) -> bool:
        """Whether sending it again after it may have been applied is safe: creations carry ids
        the ledger decides once; a PATCH carries none, and would be judged (or applied) again."""
        return self.method != "PATCH"


def _id(text: str) -> str:
    return quote(text, safe=":@")


def _ms(seconds: float, field: str) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValueError(f"{field}: a positive number of seconds, not {seconds!r}")
    return max(1, math.ceil(seconds * 1000))


def _one(event: Mapping[str, Any] | None = None) -> Callable[[Any], Result]:
    """Reads the one result of a request, raising for anything but a success."""

    def read(answer: Any) -> Result:
        result = Result.parse(answer["results"][0])
        if not result.ok:
            raise event_failed(result, event)
        return result

    return read


def read_results(answer: Any) -> list[Result]:
    return [Result.parse(result) for result in answer["results"]]


def create_asset(code: str, scale: int) -> Call[Result]:
    return Call("POST", "/v1/assets", _one(), body=_json.dumps({"code": code, "scale": scale}))


def _bound(value: Amount | None, field: str) -> str | None:
    return None if value is None else to_wire(value, field)


def create_account(
    id: str,
    asset: str,
    *,
    parent: str | None,
    min_balance: Amount | None,
    max_balance: Amount | None,
    metadata: Mapping[str, Any] | None,
) -> Call[Result]:
    account: dict[str, Any] = {"id": id, "asset": asset, "min_balance": _bound(min_balance, "min_balance")}
    if parent is not None:
        account["parent"] = parent
    if max_balance is not None:
        account["max_balance"] = _bound(max_balance, "max_balance")
    if metadata is not None:
        account["metadata"] = metadata
    return Call("POST", "/v1/accounts", _one(), body=_json.dumps({"accounts": [account]}))


def update_account(id: str, changes: Mapping[str, Any], if_version: int | None) -> Call[Result]:
    patch: dict[str, Any] = {}
    for name, value in changes.items():
        if value is _UNSET:
            continue
        patch[name] = _bound(value, name) if name in ("min_balance", "max_balance") else value
    if if_version is not None:
        patch["if_version"] = if_version
    return Call("PATCH", f"/v1/accounts/{_id(id)}", _one(), body=_json.dumps(patch))


def transfer_event(event: Mapping[str, Any], field: str = "") -> dict[str, Any]:
    """One transfer in the API's form: amounts as decimal strings, timeouts in milliseconds."""
    wire: dict[str, Any] = {}
    for name, value in event.items():
        if value is None or value is False:
            continue
        if name == "amount":
            wire[name] = to_wire(value, f"{field}amount")
        elif name == "timeout":
            wire["timeout_ms"] = _ms(value, f"{field}timeout")
        elif name == "allocate":
            wire[name] = [{"credit": share["credit"], "weight": share["weight"]} for share in value]
        else:
            wire[name] = value
    return wire


def transfers(events: Sequence[Mapping[str, Any]]) -> Call[list[Result]]:
    if not events or len(events) > BATCH_EVENTS_MAX:
        raise ValueError(f"events: 1 to {BATCH_EVENTS_MAX} transfers, not {len(events)}")
    body = [transfer_event(event, f"events[{index}].") for index, event in enumerate(events)]
    return Call("POST", "/v1/transfers", read_results, body=_json.dumps({"transfers": body}))


def transfer(event: Mapping[str, Any]) -> Call[Result]:
    wire = transfer_event(event)
    return Call("POST", "/v1/transfers", _one(wire), body=_json.dumps({"transfers": [wire]}))


def batch_body(encoded_events: Sequence[bytes]) -> bytes:
    """A transfers request from events already encoded (each validated when it was made)."""
    return b'{"transfers":[' + b",".join(encoded_events) + b"]}"


def renew_hold(id: str, timeout: float, if_seq: int | None) -> Call[Result]:
    patch: dict[str, Any] = {"timeout_ms": _ms(timeout, "timeout")}
    if if_seq is not None:
        patch["if_seq"] = if_seq
    return Call("PATCH", f"/v1/transfers/{_id(id)}", _one(), body=_json.dumps(patch))


def account(id: str, as_of: int | None) -> Call[Account | None]:
    params = {"as_of": as_of} if as_of is not None else None
    return Call("GET", f"/v1/accounts/{_id(id)}", Account.parse, params=params, absent_is_none=True)


def _limit(limit: int) -> int:
    if not 1 <= limit <= PAGE_LIMIT_MAX:
        raise ValueError(f"page_size: 1 to {PAGE_LIMIT_MAX}, not {limit}")
    return limit


def accounts_page(
    prefix: str, parent: str | None, after: str | None, limit: int
) -> Call[tuple[list[Account], str | None]]:
    params: dict[str, str | int] = {"prefix": prefix, "limit": _limit(limit)}
    if parent is not None:
        params["parent"] = parent
    if after is not None:
        params["after"] = after

    def read(answer: Any) -> tuple[list[Account], str | None]:
        return [Account.parse(item) for item in answer["accounts"]], answer.get("next_after")

    return Call("GET", "/v1/accounts", read, params=params)


def account_transfers_page(id: str, after_seq: int, limit: int) -> Call[tuple[list[Transfer], int | None] | None]:
    def read(answer: Any) -> tuple[list[Transfer], int | None]:
        return [Transfer.parse(item) for item in answer["transfers"]], answer.get("next_after_seq")

    params = {"after_seq": after_seq, "limit": _limit(limit)}
    return Call("GET", f"/v1/accounts/{_id(id)}/transfers", read, params=params, absent_is_none=True)


def get_transfer(id: str) -> Call[Transfer | None]:
    return Call("GET", f"/v1/transfers/{_id(id)}", Transfer.parse, absent_is_none=True)


def journal_page(after_seq: int, limit: int, wait: float) -> Call[tuple[list[JournalEntry], int]]:
    if not 0 <= wait <= JOURNAL_WAIT_MAX:
        raise ValueError(f"wait: 0 to {JOURNAL_WAIT_MAX} seconds, not {wait}")

    def read(answer: Any) -> tuple[list[JournalEntry], int]:
        return [JournalEntry.parse(item) for item in answer["entries"]], answer["next_after_seq"]

    params = {"after_seq": after_seq, "limit": _limit(limit), "wait_ms": int(wait * 1000)}
    return Call("GET", "/v1/journal", read, params=params, extra_wait=wait)


def health() -> Call[Health]:
    # A stalled or failed ledger answers 503 with its health: an answer, not a failure.
    return Call("GET", "/healthz", Health.parse, also_ok=frozenset({503}))


# ---- Answers and failures ----


def answer(call: Call[T], response: httpx.Response) -> T | None:
    """The value of a successful answer (or ``None`` for an absent one); raises otherwise."""
    if response.status_code == 404 and call.absent_is_none:
        return None
    if response.is_success or response.status_code in call.also_ok:
        return call.read(_json.loads(response.content))
    raise api_error(response)


def api_error(response: httpx.Response) -> TallyError:
    status = response.status_code
    try:
        detail = _json.loads(response.content)["error"]
        code, message, field = detail.get("code"), detail.get("message", ""), detail.get("field")
    except (ValueError, KeyError, TypeError):
        code, message, field = None, response.text[:200], None
    text = f"{status} {code}: {message}" if code else f"{status}: {message}"
    if status == 401:
        return Unauthorized(text, status=status, code=code)
    if status == 403:
        return Forbidden(text, field=field, code=code or "forbidden")
    if status == 429:
        return RateLimited(text, status=status, code=code)
    if status == 504:
        again = "send it again with the same ids, which is safe"
        return OutcomeUnknown(f"{text}. The request may have been applied: {again}", status=status, code=code)
    if status == 503:
        return Unavailable(f"{text}. Nothing was applied", status=status, code=code)
    if status == 400 or status in (408, 413, 415, 422):
        return InvalidRequest(text, field=field, status=status, code=code or "invalid_request")
    return TallyError(text, status=status, code=code)


#: Answers worth asking again: nothing was applied (429, 503), or it may have been and the
#: same ids make asking again safe (504).
RETRYABLE_STATUS = frozenset({429, 503, 504})


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T | None


class Retrying(Generic[T]):
    """One call's attempts, apart from how they are sent: told what each attempt got, it says
    whether the call is done or how long to wait before the next. Exponential backoff with
    full jitter, at least what ``Retry-After`` asks, at most ``max_retries`` more attempts and
    never past ``deadline`` seconds in all."""

    def __init__(self, call: Call[T], max_retries: int, deadline: float) -> None:
        self.call = call
        self.max_retries = max_retries
        self.deadline_at = time.monotonic() + deadline
        self.made = 0
        #: Whether an attempt may have reached the ledger without an answer coming back.
        self.maybe_applied = False

    def answered(self, response: httpx.Response) -> Done[T] | float:
        status = response.status_code
        if status not in RETRYABLE_STATUS:
            return Done(answer(self.call, response))
        if status in self.call.also_ok:
            try:
                return Done(answer(self.call, response))
            except (KeyError, TypeError, ValueError):
                pass  # not the answer but a refusal (an overloaded server's 503): ask again
        if status == 504:
            self.maybe_applied = True
        return self._again(api_error(response), retry_after(response))

    def failed(self, error: httpx.TransportError) -> float:
        """A request that got no answer. A connection never made sent nothing; any other
        failure may have come after the ledger had the request."""
        if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
            failure: TallyError = Unavailable(f"cannot reach the ledger: {error}. Nothing was applied")
        elif self.call.writes:
            self.maybe_applied = True
            failure = OutcomeUnknown(
                f"no answer ({type(error).__name__}: {error}): send it again with the same ids, which is safe"
            )
        else:
            failure = Unavailable(f"no answer ({type(error).__name__}: {error})")
        return self._again(failure, None)

    def _again(self, failure: TallyError, retry_after: float | None) -> float:
        if self.maybe_applied and not self.call.resendable:
            raise OutcomeUnknown(
                f"{failure}; the change may have been applied, and it carries no id to make sending it again safe:"
                " read what it changed to see",
                status=failure.status,
                code=failure.code,
            )
        delay = random.uniform(0, min(5.0, 0.1 * 2**self.made))
        if retry_after is not None:
            delay = max(delay, retry_after)
        if self.made >= self.max_retries or time.monotonic() + delay >= self.deadline_at:
            # An unknown outcome wins over "unavailable": an earlier attempt may have applied it.
            if self.maybe_applied and self.call.writes and not isinstance(failure, OutcomeUnknown):
                earlier = "an earlier attempt may have been applied: send it again with the same ids, which is safe"
                raise OutcomeUnknown(f"{failure}; {earlier}")
            raise failure
        self.made += 1
        return delay


def retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def journal_pause(error: TallyError, pause: float) -> float:
    """How long a journal feed waits after ``error`` before asking again (raising it unless
    the ledger was only away or busy), and the next pause."""
    if error.status not in (None, 429, 503, 504):
        raise error
    return min(pause * 2, 5.0)
