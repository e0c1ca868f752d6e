"""The async twin: the same surface awaited, and batching of concurrent single transfers."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import pytest

from tally_ledger import AsyncTally, InsufficientFunds, InvalidRequest, NotFound
from tally_ledger.testing import TallyServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def ledger(client: AsyncTally, p: str) -> None:
    await client.create_asset(f"{p}USD", 2)
    await client.create_account(f"{p}world", f"{p}USD", min_balance=None)
    await client.create_account(f"{p}alice", f"{p}USD")
    await client.transfer(f"{p}fund", f"{p}world", f"{p}alice", "100.00")


async def test_the_async_client_has_the_same_surface(tally_server: TallyServer, tally_prefix: str) -> None:
    p = tally_prefix
    async with AsyncTally(tally_server.url) as client:
        await ledger(client, p)
        with pytest.raises(InsufficientFunds):
            await client.transfer(f"{p}big", f"{p}alice", f"{p}world", 1000)
        async with await client.hold(f"{p}h", f"{p}alice", f"{p}world", "25.00", timeout=60) as hold:
            assert (await client.account(f"{p}alice") or pytest.fail()).available == Decimal("75.00")
            await hold.post(Decimal("20"))
        assert (await client.account(f"{p}alice") or pytest.fail()).balance == Decimal("80.00")
        assert [a.id async for a in client.accounts(p, page_size=1)] == [f"{p}alice", f"{p}world"]
        moved = [t.id async for t in client.account_transfers(f"{p}alice")]
        assert moved == [f"{p}fund", f"{p}h", f"{p}h.post"]
        feed = client.journal(0, wait=0)
        first = await feed.__anext__()
        assert first.seq == 1
        assert await client.get_transfer(f"{p}none") is None


async def test_batching_sends_concurrent_transfers_together_and_each_caller_hears_its_own(
    tally_server: TallyServer, tally_prefix: str
) -> None:
    p = tally_prefix
    async with AsyncTally(tally_server.url, batching=True) as client:
        await ledger(client, p)
        sent: list[int] = []
        original = client._send

        async def counting(call):  # type: ignore[no-untyped-def]
            if call.path == "/v1/transfers":
                sent.append(1)
            return await original(call)

        client._send = counting  # type: ignore[method-assign]

        async def pay(index: int) -> str:
            amount = 1000 if index == 7 else 1
            try:
                return (await client.transfer(f"{p}c{index}", f"{p}alice", f"{p}world", amount)).result
            except InsufficientFunds:
                return "refused"

        outcomes = await asyncio.gather(*(pay(index) for index in range(32)))
        assert outcomes.count("created") == 31 and outcomes[7] == "refused"
        assert len(sent) < 32, f"{len(sent)} requests carried 32 transfers"
        with pytest.raises(NotFound):
            await client.transfer(f"{p}lost", f"{p}alice", f"{p}nobody", 1)
        assert (await client.account(f"{p}alice") or pytest.fail()).balance == Decimal("69.00")


async def test_a_batched_transfer_the_api_refuses_fails_its_own_caller_only(
    tally_server: TallyServer, tally_prefix: str
) -> None:
    p = tally_prefix
    async with AsyncTally(tally_server.url, batching=True) as client:
        await ledger(client, p)

        async def pay(id: str, metadata: dict[str, object] | None = None) -> str:
            try:
                return (await client.transfer(id, f"{p}alice", f"{p}world", 1, metadata=metadata)).result
            except InvalidRequest as error:
                return f"invalid {error.field}"
            except TypeError:
                return "not json"

        outcomes = await asyncio.gather(
            pay(f"{p}ok1"),
            pay(f"{p}bad id"),
            pay(f"{p}ok2"),
            pay(f"{p}ok3", {"when": date(2026, 11, 30)}),
            pay(f"{p}ok4"),
        )
        assert outcomes == ["created", "invalid transfers[0].id", "created", "not json", "created"]
        assert (await client.account(f"{p}alice") or pytest.fail()).balance == Decimal("97.00")
