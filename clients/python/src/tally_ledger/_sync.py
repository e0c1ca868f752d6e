"""``Tally``: the blocking client. Safe to share between threads, and after ``os.fork`` (a
child process makes its own connections on first use: gunicorn and Celery prefork workers
never share a socket with their parent)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from . import _calls
from ._amounts import Amount
from ._calls import Call, Done, Retrying
from ._errors import HoldNotPending, InsufficientFunds, LeaseLost, OutcomeUnknown, TallyError
from ._models import Account, Health, JournalEntry, Result, Transfer

if TYPE_CHECKING:
    from ._async import AsyncHold

T = TypeVar("T")

_UNSET: Any = _calls._UNSET


def settings(url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    """The server's URL and the request headers, from the arguments or the environment."""
    url = url or os.environ.get("TALLY_URL")
    if not url:
        raise ValueError("url: give the server's URL, or set TALLY_URL")
    api_key = api_key if api_key is not None else os.environ.get("TALLY_API_KEY")
    headers = {"user-agent": "tally-ledger-python/0.1.0", "content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return url.rstrip("/"), headers


# Clients made in this process: a child of ``os.fork`` resets them, so it never shares its
# parent's sockets nor inherits a lock another thread of the parent held.
_clients: weakref.WeakSet[Tally] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._forget_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Tally:
    """The ledger at ``url`` (default ``TALLY_URL``), with ``api_key`` (default
    ``TALLY_API_KEY``). ``timeout`` is each request's, in seconds; a call is tried at most
    ``max_retries`` more times, within ``deadline`` seconds in all, when the ledger is
    unreachable, busy (503, 429) or its answer was lost (504): always with the same ids, so a
    retry is never applied twice."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        deadline: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url, self._headers = settings(url, api_key)
        self.timeout, self.max_retries, self.deadline = timeout, max_retries, deadline
        self._transport = transport
        self._lock = threading.Lock()
        self._pid = -1
        self._http: httpx.Client | None = None
        self._closed = False
        _clients.add(self)

    def _forget_connections(self) -> None:
        self._lock = threading.Lock()
        self._http, self._pid = None, -1

    def _client(self) -> httpx.Client:
        if self._closed:
            raise TallyError("this client is closed")
        # A child process must not use its parent's connections: make its own.
        if self._pid != os.getpid() or self._http is None:
            with self._lock:
                if self._pid != os.getpid() or self._http is None:
                    self._http = httpx.Client(
                        base_url=self.url, headers=self._headers, timeout=self.timeout, transport=self._transport
                    )
                    self._pid = os.getpid()
        return self._http

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._http is not None and self._pid == os.getpid():
                self._http.close()
            self._http = None

    def __enter__(self) -> Tally:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        value = self._send(call)
        if value is None:
            raise TallyError(f"{call.method} {call.path}: the ledger answered 404")
        return value

    def _send(self, call: Call[T]) -> T | None:
        retrying = Retrying(call, self.max_retries, self.deadline)
        while True:
            try:
                response = self._client().request(
                    call.method,
                    call.path,
                    params=call.params,
                    content=call.body,
                    timeout=self.timeout + call.extra_wait,
                )
            except httpx.TransportError as error:
                step: Done[T] | float = retrying.failed(error)
            else:
                step = retrying.answered(response)
            if isinstance(step, Done):
                return step.value
            time.sleep(step)

    # ---- Writes ----

    def create_asset(self, code: str, scale: int) -> Result:
        """An asset with ``scale`` decimals (0 to 18). Made again with the same scale: ``exists``."""
        return self._run(_calls.create_asset(code, scale))

    def create_account(
        self,
        id: str,
        asset: str,
        *,
        parent: str | None = None,
        min_balance: Amount | None = Decimal("0"),
        max_balance: Amount | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Result:
        """An account; ``min_balance=None`` lets it go below zero without a floor."""
        return self._run(
            _calls.create_account(
                id, asset, parent=parent, min_balance=min_balance, max_balance=max_balance, metadata=metadata
            )
        )

    def update_account(
        self,
        id: str,
        *,
        min_balance: Amount | None = _UNSET,
        max_balance: Amount | None = _UNSET,
        metadata: Mapping[str, Any] | None = _UNSET,
        closed: bool = _UNSET,
        force: bool = _UNSET,
        if_version: int | None = None,
    ) -> Result:
        """Changes what is given (``None`` clears a bound); ``if_version`` raises
        ``VersionMismatch`` if the account changed since that version."""
        changes = {
            "min_balance": min_balance,
            "max_balance": max_balance,
            "metadata": metadata,
            "closed": closed,
            "force": force,
        }
        return self._run(_calls.update_account(id, changes, if_version))

    def transfer(
        self,
        id: str,
        debit: str,
        credit: str,
        amount: Amount,
        *,
        pending: bool = False,
        timeout: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        if_debit_version: int | None = None,
        if_credit_version: int | None = None,
    ) -> Result:
        """Moves ``amount`` from ``debit`` to ``credit`` (a hold with ``pending=True``, voided by
        itself after ``timeout`` seconds). A retry of the same id returns the original result;
        any failure raises (``InsufficientFunds``, ``LimitExceeded``, ...)."""
        event = {
            "id": id,
            "debit": debit,
            "credit": credit,
            "amount": amount,
            "pending": pending,
            "timeout": timeout,
            "metadata": metadata,
            "if_debit_version": if_debit_version,
            "if_credit_version": if_credit_version,
        }
        return self._run(_calls.transfer(event))

    def transfers(self, events: Sequence[Mapping[str, Any]]) -> list[Result]:
        """Up to 8,190 transfers in one request, each a mapping of ``transfer``'s arguments (and
        ``post``, ``void``, ``linked``, ``balancing``, ``allocate``). Returns one result per
        event, in order, and raises for none of them."""
        return self._run(_calls.transfers(events))

    def post(self, id: str, hold: str, amount: Amount | None = None) -> Result:
        """Posts the hold ``hold`` (all of it, or ``amount``; the rest is released) as transfer ``id``."""
        return self._run(_calls.transfer({"id": id, "post": hold, "amount": amount}))

    def void(self, id: str, hold: str) -> Result:
        """Voids the hold ``hold`` as transfer ``id``."""
        return self._run(_calls.transfer({"id": id, "void": hold}))

    def renew(self, hold: str, timeout: float, *, if_seq: int | None = None) -> Result:
        """The hold now expires ``timeout`` seconds from now (a lease renewed)."""
        return self._run(_calls.renew_hold(hold, timeout, if_seq))

    def hold(
        self,
        id: str,
        debit: str,
        credit: str,
        amount: Amount,
        *,
        timeout: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Hold:
        """Places a hold now. As ``with tally.hold(...) as h:`` it is posted when the block ends
        normally (``h.post(less)`` inside posts less) and voided when the block raises."""
        hold = Hold(self, id)
        hold.placed = self.transfer(id, debit, credit, amount, pending=True, timeout=timeout, metadata=metadata)
        return hold

    def lease(self, account: str, ttl: float = 30.0, *, to: str, id: str | None = None, wait: float = 0.0) -> Lease:
        """Takes a lease on ``account``: a hold of 1 debiting it (its ``min_balance`` is minus the
        number of permits: -1 for a lock) and crediting ``to``, expiring after ``ttl`` seconds
        and renewed in the background every ``ttl / 3``. ``lease.token`` is the fencing token
        (the hold's seq: a later lease always has a larger one). Waits up to ``wait`` seconds
        for a permit (``InsufficientFunds`` after that). ``with`` releases it at the end."""
        # A refused attempt is decided under its id: each attempt needs its own.
        base = id or f"lease:{account}:{uuid.uuid4().hex}"
        deadline, pause = time.monotonic() + wait, 0.01
        attempt = 0
        while True:
            attempt += 1
            try:
                return Lease(self, account, to, ttl, base if attempt == 1 else f"{base}.{attempt}").acquire()
            except InsufficientFunds:
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    # ---- Reads ----

    def account(self, id: str, *, as_of: int | None = None) -> Account | None:
        """The account now, or exactly as it was right after journal position ``as_of``."""
        return self._send(_calls.account(id, as_of))

    def accounts(self, prefix: str = "", *, parent: str | None = None, page_size: int = 100) -> Iterator[Account]:
        """Every account whose id starts with ``prefix`` (or under ``parent``), in id order,
        fetched a page at a time."""
        after: str | None = None
        while True:
            page, after = self._run(_calls.accounts_page(prefix, parent, after, page_size))
            yield from page
            if after is None:
                return

    def account_transfers(self, id: str, *, after_seq: int = 0, page_size: int = 100) -> Iterator[Transfer]:
        """The transfers that changed the account, in seq order, a page at a time."""
        while True:
            page = self._send(_calls.account_transfers_page(id, after_seq, page_size))
            if page is None:
                return
            transfers, next_after = page
            yield from transfers
            if next_after is None:
                return
            after_seq = next_after

    def get_transfer(self, id: str) -> Transfer | None:
        return self._send(_calls.get_transfer(id))

    def journal(self, after_seq: int = 0, *, wait: float = 25.0, page_size: int = 1000) -> Iterator[JournalEntry]:
        """Every journal entry after ``after_seq``, in order, forever: waits (long polls) for
        new ones, and reconnects with backoff if the ledger goes away. Store the ``seq`` of the
        last entry you handled and pass it back to resume."""
        pause = 0.1
        while True:
            try:
                entries, after_seq = self._run(_calls.journal_page(after_seq, page_size, wait))
            except TallyError as error:
                time.sleep(pause)
                pause = _calls.journal_pause(error, pause)
                continue
            pause = 0.1
            yield from entries

    def journal_page(
        self, after_seq: int = 0, *, wait: float = 0.0, page_size: int = 1000
    ) -> tuple[list[JournalEntry], int]:
        """One page of the journal after ``after_seq`` (waiting up to ``wait`` seconds for the
        first entry) and the seq to ask after next: a page may be empty while the seq moves on
        (entries a confined key may not see)."""
        return self._run(_calls.journal_page(after_seq, page_size, wait))

    def health(self) -> Health:
        return self._run(_calls.health())


def post_id(hold: Hold | AsyncHold) -> str:
    """The id of a hold's next post: ``<id>.post``, then ``<id>.post2``, ... A post the ledger
    refused (more than the hold, say) is decided under its id, so another try needs another;
    the sequence is the same on every run, so a retried flow reuses the same ids."""
    hold.posts_tried += 1
    return f"{hold.id}.post" if hold.posts_tried == 1 else f"{hold.id}.post{hold.posts_tried}"


class Hold:
    """A hold placed by ``Tally.hold``. Posted or voided once, as transfer ``<id>.post`` or
    ``<id>.void``; ``seq`` is its journal position (a lease's fencing token)."""

    def __init__(self, tally: Tally, id: str) -> None:
        self.tally, self.id = tally, id
        self.placed: Result | None = None
        self.resolved: Result | None = None
        self.posts_tried = 0

    @property
    def seq(self) -> int | None:
        return self.placed.seq if self.placed else None

    def post(self, amount: Amount | None = None) -> Result:
        self.resolved = self.tally.post(post_id(self), self.id, amount)
        return self.resolved

    def void(self) -> Result:
        self.resolved = self.tally.void(f"{self.id}.void", self.id)
        return self.resolved

    def renew(self, timeout: float) -> Result:
        return self.tally.renew(self.id, timeout)

    def __enter__(self) -> Hold:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.resolved is not None:
            return
        if kind is None:
            self.post()
            return
        with contextlib.suppress(HoldNotPending):  # expired meanwhile: released all the same
            self.void()


class Lease:
    """A lease taken by ``Tally.lease``: renewed in the background until released. ``check()``
    raises ``LeaseLost`` once a renewal failed: stop, for another holder may have it."""

    def __init__(self, tally: Tally, account: str, to: str, ttl: float, id: str) -> None:
        self.tally, self.account, self.to, self.ttl, self.id = tally, account, to, ttl, id
        self.token = 0
        self.renewed_at = 0.0
        self.lost: TallyError | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> Lease:
        started = time.monotonic()
        placed = self.tally.transfer(self.id, self.account, self.to, 1, pending=True, timeout=self.ttl)
        assert placed.seq is not None
        if placed.result == "exists":
            hold = self.tally.get_transfer(self.id)
            if hold is None or hold.state != "pending":
                raise LeaseLost(
                    f"lease id {self.id} was used before and is {hold.state if hold else 'gone'}: use a new id"
                )
        self.token, self.renewed_at = placed.seq, started
        self._renewer = threading.Thread(target=self._keep, name=f"lease {self.id}", daemon=True)
        self._renewer.start()
        return self

    def _keep(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            started = time.monotonic()
            try:
                self.tally.renew(self.id, self.ttl)
            except OutcomeUnknown:
                # The renewal may have been applied: only the hold can say whether it still runs.
                try:
                    hold = self.tally.get_transfer(self.id)
                except TallyError as error:
                    self.lost = LeaseLost(f"lease {self.id} on {self.account}: {error}")
                    return
                if hold is None or hold.state != "pending":
                    self.lost = LeaseLost(f"lease {self.id} on {self.account} is {hold.state if hold else 'gone'}")
                    return
            except TallyError as error:
                self.lost = LeaseLost(f"lease {self.id} on {self.account} could not be renewed: {error}")
                return
            self.renewed_at = started

    def check(self) -> None:
        """Raises ``LeaseLost`` if a renewal failed, or if none has succeeded for a whole ttl
        (a renewal stuck in retries: the hold may have expired meanwhile)."""
        if self.lost is None and time.monotonic() - self.renewed_at >= self.ttl:
            self.lost = LeaseLost(f"lease {self.id} on {self.account} was not renewed within its ttl")
        if self.lost is not None:
            raise self.lost

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        with contextlib.suppress(HoldNotPending):
            self.tally.void(f"{self.id}.void", self.id)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
