"""Leases: a hold on a one-permit account, renewed in the background, with a fencing token."""

from __future__ import annotations

import time

import pytest

from tally_ledger import AsyncTally, InsufficientFunds, LeaseLost, Tally
from tally_ledger.testing import TallyServer


def lock(tally: Tally, p: str) -> tuple[str, str]:
    tally.create_asset(f"{p}LOCK", 0)
    tally.create_account(f"{p}lock", f"{p}LOCK", min_balance=-1)  # one permit
    tally.create_account(f"{p}leases", f"{p}LOCK", min_balance=None)
    return f"{p}lock", f"{p}leases"


def test_a_lease_is_exclusive_renewed_while_held_and_fenced(tally: Tally, tally_prefix: str) -> None:
    account, to = lock(tally, tally_prefix)
    with tally.lease(account, ttl=0.3, to=to) as first:
        with pytest.raises(InsufficientFunds):
            tally.lease(account, ttl=0.3, to=to)
        time.sleep(0.9)  # three times the ttl: only renewals keep it
        first.check()
        assert (tally.get_transfer(first.id) or pytest.fail()).state == "pending"
    with tally.lease(account, ttl=5, to=to, wait=5) as second:
        assert second.token > first.token, "a later lease has a larger fencing token"


def test_a_lease_that_cannot_be_renewed_is_lost(tally: Tally, tally_prefix: str) -> None:
    account, to = lock(tally, tally_prefix)
    lease = tally.lease(account, ttl=0.3, to=to)
    tally.void(f"{lease.id}.taken", lease.id)  # as if it had expired and another took the lock
    time.sleep(0.5)
    with pytest.raises(LeaseLost):
        lease.check()
    lease.release()


@pytest.mark.anyio
async def test_the_async_lease_waits_for_the_permit(tally_server: TallyServer, tally_prefix: str) -> None:
    account, to = lock(Tally(tally_server.url), tally_prefix)
    async with AsyncTally(tally_server.url) as client:
        held = await client.lease(account, ttl=0.3, to=to)
        assert held.token > 0
        import asyncio

        async def release_soon() -> None:
            await asyncio.sleep(0.5)
            await held.release()

        releasing = asyncio.ensure_future(release_soon())
        async with await client.lease(account, ttl=5, to=to, wait=5) as next_one:
            assert next_one.token > held.token
            held.check()
        await releasing


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
