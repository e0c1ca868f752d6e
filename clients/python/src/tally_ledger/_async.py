"""``AsyncTally``: the same surface as ``Tally`` for asyncio, plus optional batching: with
``batching=True``, single transfers made by many coroutines at once travel together in one
request (each caller still gets its own result or exception), as TigerBeetle's clients do."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar

import httpx

from . import _calls, _json
from ._amounts import Amount
from ._calls import BATCH_EVENTS_MAX, Call, Done, Retrying
from ._errors import (
    Forbidden,
    HoldNotPending,
    InsufficientFunds,
    InvalidRequest,
    LeaseLost,
    OutcomeUnknown,
    TallyError,
    event_failed,
)
from ._models import Account, Health, JournalEntry, Result, Transfer
from ._sync import post_id, settings

T = TypeVar("T")

_UNSET: Any = _calls._UNSET


class AsyncTally:
    """``Tally`` for asyncio: the same arguments and methods, awaited. With ``batching=True``,
    concurrent ``transfer`` calls are sent together, up to 8,190 per request."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        deadline: float = 60.0,
        batching: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url, self._headers = settings(url, api_key)
        self.timeout, self.max_retries, self.deadline = timeout, max_retries, deadline
        self._transport = transport
        self._pid = -1
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        self._batch: _Batch | None = _Batch(self) if batching else None

    def _client(self) -> httpx.AsyncClient:
        if self._closed:
            raise TallyError("this client is closed")
        # A child process must not use its parent's connections: make its own.
        if self._pid != os.getpid() or self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.url, headers=self._headers, timeout=self.timeout, transport=self._transport
            )
            self._pid = os.getpid()
        return self._http

    async def aclose(self) -> None:
        self._closed = True
        if self._http is not None and self._pid == os.getpid():
            await self._http.aclose()
        self._http = None

    async def __aenter__(self) -> AsyncTally:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _run(self, call: Call[T]) -> T:
        value = await self._send(call)
        if value is None:
            raise TallyError(f"{call.method} {call.path}: the ledger answered 404")
        return value

    async def _send(self, call: Call[T]) -> T | None:
        retrying = Retrying(call, self.max_retries, self.deadline)
        while True:
            try:
                response = await self._client().request(
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
            await asyncio.sleep(step)

    # ---- Writes ----

    async def create_asset(self, code: str, scale: int) -> Result:
        return await self._run(_calls.create_asset(code, scale))

    async def create_account(
        self,
        id: str,
        asset: str,
        *,
        parent: str | None = None,
        min_balance: Amount | None = Decimal("0"),
        max_balance: Amount | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Result:
        call = _calls.create_account(
            id, asset, parent=parent, min_balance=min_balance, max_balance=max_balance, metadata=metadata
        )
        return await self._run(call)

    async def update_account(
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
        changes = {
            "min_balance": min_balance,
            "max_balance": max_balance,
            "metadata": metadata,
            "closed": closed,
            "force": force,
        }
        return await self._run(_calls.update_account(id, changes, if_version))

    async def transfer(
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
        if self._batch is not None:
            return await self._batch.submit(_calls.transfer_event(event))
        return await self._run(_calls.transfer(event))

    async def transfers(self, events: Sequence[Mapping[str, Any]]) -> list[Result]:
        return await self._run(_calls.transfers(events))

    async def post(self, id: str, hold: str, amount: Amount | None = None) -> Result:
        return await self._run(_calls.transfer({"id": id, "post": hold, "amount": amount}))

    async def void(self, id: str, hold: str) -> Result:
        return await self._run(_calls.transfer({"id": id, "void": hold}))

    async def renew(self, hold: str, timeout: float, *, if_seq: int | None = None) -> Result:
        return await self._run(_calls.renew_hold(hold, timeout, if_seq))

    async def hold(
        self,
        id: str,
        debit: str,
        credit: str,
        amount: Amount,
        *,
        timeout: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AsyncHold:
        """Places a hold now; ``async with`` posts it when the block ends normally and voids it
        when the block raises."""
        hold = AsyncHold(self, id)
        hold.placed = await self.transfer(id, debit, credit, amount, pending=True, timeout=timeout, metadata=metadata)
        return hold

    async def lease(
        self, account: str, ttl: float = 30.0, *, to: str, id: str | None = None, wait: float = 0.0
    ) -> AsyncLease:
        """``Tally.lease`` for asyncio: renewed by a task; ``async with`` releases it."""
        # A refused attempt is decided under its id: each attempt needs its own.
        base = id or f"lease:{account}:{uuid.uuid4().hex}"
        deadline, pause = time.monotonic() + wait, 0.01
        attempt = 0
        while True:
            attempt += 1
            try:
                return await AsyncLease(self, account, to, ttl, base if attempt == 1 else f"{base}.{attempt}").acquire()
            except InsufficientFunds:
                if time.monotonic() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.5)

    # ---- Reads ----

    async def account(self, id: str, *, as_of: int | None = None) -> Account | None:
        return await self._send(_calls.account(id, as_of))

    async def accounts(
        self, prefix: str = "", *, parent: str | None = None, page_size: int = 100
    ) -> AsyncIterator[Account]:
        after: str | None = None
        while True:
            page, after = await self._run(_calls.accounts_page(prefix, parent, after, page_size))
            for account in page:
                yield account
            if after is None:
                return

    async def account_transfers(self, id: str, *, after_seq: int = 0, page_size: int = 100) -> AsyncIterator[Transfer]:
        while True:
            page = await self._send(_calls.account_transfers_page(id, after_seq, page_size))
            if page is None:
                return
            transfers, next_after = page
            for transfer in transfers:
                yield transfer
            if next_after is None:
                return
            after_seq = next_after

    async def get_transfer(self, id: str) -> Transfer | None:
        return await self._send(_calls.get_transfer(id))

    async def journal(
        self, after_seq: int = 0, *, wait: float = 25.0, page_size: int = 1000
    ) -> AsyncIterator[JournalEntry]:
        pause = 0.1
        while True:
            try:
                entries, after_seq = await self._run(_calls.journal_page(after_seq, page_size, wait))
            except TallyError as error:
                await asyncio.sleep(pause)
                pause = _calls.journal_pause(error, pause)
                continue
            pause = 0.1
            for entry in entries:
                yield entry

    async def journal_page(
        self, after_seq: int = 0, *, wait: float = 0.0, page_size: int = 1000
    ) -> tuple[list[JournalEntry], int]:
        """One page of the journal after ``after_seq`` (waiting up to ``wait`` seconds for the
        first entry) and the seq to ask after next: a page may be empty while the seq moves on
        (entries a confined key may not see)."""
        return await self._run(_calls.journal_page(after_seq, page_size, wait))

    async def health(self) -> Health:
        return await self._run(_calls.health())


class AsyncHold:
    """A hold placed by ``AsyncTally.hold``; see ``Hold``."""

    def __init__(self, tally: AsyncTally, id: str) -> None:
        self.tally, self.id = tally, id
        self.placed: Result | None = None
        self.resolved: Result | None = None
        self.posts_tried = 0

    @property
    def seq(self) -> int | None:
        return self.placed.seq if self.placed else None

    async def post(self, amount: Amount | None = None) -> Result:
        self.resolved = await self.tally.post(post_id(self), self.id, amount)
        return self.resolved

    async def void(self) -> Result:
        self.resolved = await self.tally.void(f"{self.id}.void", self.id)
        return self.resolved

    async def renew(self, timeout: float) -> Result:
        return await self.tally.renew(self.id, timeout)

    async def __aenter__(self) -> AsyncHold:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.resolved is not None:
            return
        if kind is None:
            await self.post()
            return
        with contextlib.suppress(HoldNotPending):  # expired meanwhile: released all the same
            await self.void()


class AsyncLease:
    """A lease taken by ``AsyncTally.lease``; see ``Lease``."""

    def __init__(self, tally: AsyncTally, account: str, to: str, ttl: float, id: str) -> None:
        self.tally, self.account, self.to, self.ttl, self.id = tally, account, to, ttl, id
        self.token = 0
        self.renewed_at = 0.0
        self.lost: TallyError | None = None
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self) -> AsyncLease:
        started = time.monotonic()
        placed = await self.tally.transfer(self.id, self.account, self.to, 1, pending=True, timeout=self.ttl)
        assert placed.seq is not None
        if placed.result == "exists":
            hold = await self.tally.get_transfer(self.id)
            if hold is None or hold.state != "pending":
                raise LeaseLost(
                    f"lease id {self.id} was used before and is {hold.state if hold else 'gone'}: use a new id"
                )
        self.token, self.renewed_at = placed.seq, started
        self._renewer = asyncio.get_running_loop().create_task(self._keep())
        return self

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            started = time.monotonic()
            try:
                await self.tally.renew(self.id, self.ttl)
            except OutcomeUnknown:
                try:
                    hold = await self.tally.get_transfer(self.id)
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
        """See ``Lease.check``."""
        if self.lost is None and time.monotonic() - self.renewed_at >= self.ttl:
            self.lost = LeaseLost(f"lease {self.id} on {self.account} was not renewed within its ttl")
        if self.lost is not None:
            raise self.lost

    async def release(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        with contextlib.suppress(HoldNotPending):
            await self.tally.void(f"{self.id}.void", self.id)

    async def __aenter__(self) -> AsyncLease:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.release()


#: A batched request's body stays under the server's 32 MiB limit, whatever the events hold.
BATCH_BODY_BYTES_MAX = 30 << 20

_RIDER = re.compile(r"^transfers\[(\d+)\]")


class _Batch:
    """Transfers waiting to be sent together. The first caller starts a flush on the next turn
    of the event loop; everyone who arrives before it runs rides along (up to 8,190 events and
    30 MiB). Each caller hears its own result, or its own exception: an event the API refuses
    (400, 403) fails its caller alone and the others are sent again without it."""

    def __init__(self, tally: AsyncTally) -> None:
        self.tally = tally
        self.waiting: list[_Rider] = []
        self.task: asyncio.Task[None] | None = None

    async def submit(self, event: dict[str, Any]) -> Result:
        encoded = _json.dumps(event)  # an event that is not JSON fails its caller, here
        loop = asyncio.get_running_loop()
        rider = _Rider(encoded, event, loop.create_future())
        self.waiting.append(rider)
        if self.task is None or self.task.done():
            self.task = loop.create_task(self.flush())
        result = await rider.future
        if not result.ok:
            raise event_failed(result, event)
        return result

    async def flush(self) -> None:
        await asyncio.sleep(0)  # everyone calling on this turn of the loop rides along
        try:
            while self.waiting:
                taken: list[_Rider] = []
                size = 0
                while (
                    self.waiting
                    and len(taken) < BATCH_EVENTS_MAX
                    and size + len(self.waiting[0].encoded) < BATCH_BODY_BYTES_MAX
                ):
                    size += len(self.waiting[0].encoded) + 1
                    taken.append(self.waiting.pop(0))
                await self.send(taken)
        except BaseException as error:
            for rider in self.waiting:
                rider.fail(error)
            self.waiting = []
            raise

    async def send(self, taken: list[_Rider]) -> None:
        while taken:
            call = Call(
                "POST", "/v1/transfers", _calls.read_results, body=_calls.batch_body([r.encoded for r in taken])
            )
            try:
                results = await self.tally._run(call)
            except (InvalidRequest, Forbidden) as error:
                index = _rider_of(error.field)
                if index is None or index >= len(taken):
                    for rider in taken:
                        rider.fail(error)
                    return
                field = _RIDER.sub("transfers[0]", error.field or "")
                taken.pop(index).fail(
                    type(error)(str(error), field=field, status=error.status or 400, code=error.code or "")
                )
                continue
            except Exception as error:  # every rider hears the request's fate
                for rider in taken:
                    rider.fail(error)
                return
            except BaseException as error:  # cancelled: so are they
                for rider in taken:
                    rider.fail(error)
                raise
            if len(results) != len(taken):
                mismatch = TallyError(f"the ledger answered {len(results)} results for {len(taken)} transfers")
                for rider in taken:
                    rider.fail(mismatch)
                return
            for rider, result in zip(taken, results, strict=True):
                if not rider.future.done():
                    rider.future.set_result(result)
            return


def _rider_of(field: str | None) -> int | None:
    found = _RIDER.match(field or "")
    return int(found.group(1)) if found else None


class _Rider:
    def __init__(self, encoded: bytes, event: dict[str, Any], future: asyncio.Future[Result]) -> None:
        self.encoded, self.event, self.future = encoded, event, future

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)
