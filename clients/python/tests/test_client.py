"""Every method of the blocking client against a real server, and every failure it maps."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tally_ledger import (
    AccountClosed,
    EventFailed,
    Forbidden,
    HoldNotPending,
    IdConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    Tally,
    Unauthorized,
    Unavailable,
    VersionMismatch,
)
from tally_ledger.testing import TallyServer, find_binary


@pytest.fixture
def usd(tally: Tally, tally_prefix: str) -> str:
    """An asset with 2 decimals, a world account without a floor, and alice and bob."""
    asset = f"{tally_prefix}USD"
    tally.create_asset(asset, 2)
    tally.create_account(f"{tally_prefix}world", asset, min_balance=None)
    tally.create_account(f"{tally_prefix}alice", asset)
    tally.create_account(f"{tally_prefix}bob", asset, max_balance="500.00")
    tally.transfer(f"{tally_prefix}fund", f"{tally_prefix}world", f"{tally_prefix}alice", Decimal("100.00"))
    return tally_prefix


def test_a_transfer_moves_exact_amounts_and_a_retry_returns_the_original(tally: Tally, usd: str) -> None:
    first = tally.transfer(
        f"{usd}t1", f"{usd}alice", f"{usd}bob", Decimal("0.10"), metadata={"rate": Decimal("0.10000000000000000000001")}
    )
    again = tally.transfer(
        f"{usd}t1", f"{usd}alice", f"{usd}bob", "0.10", metadata={"rate": Decimal("0.10000000000000000000001")}
    )
    assert (first.result, again.result) == ("created", "exists")
    assert again.seq == first.seq and first.timestamp is not None
    alice = tally.account(f"{usd}alice")
    assert alice is not None and alice.balance == Decimal("99.90") and isinstance(alice.balance, Decimal)
    transfer = tally.get_transfer(f"{usd}t1")
    assert transfer is not None and transfer.amount == Decimal("0.10") and transfer.state == "posted"
    assert transfer.metadata == {"rate": Decimal("0.10000000000000000000001")}, "metadata numbers come back as sent"
    assert tally.get_transfer(f"{usd}nothing") is None and tally.account(f"{usd}nobody") is None


def test_metadata_numbers_go_back_as_they_came(tally: Tally, tally_server: TallyServer, usd: str) -> None:
    raw = f'{{"id":"{usd}raw","debit":"{usd}alice","credit":"{usd}bob","amount":"1.00",'
    body = raw + '"metadata":{"a":1e0,"b":1E2,"c":1.0,"d":1}}'
    body = '{"transfers":[' + body + "]}"
    sent = httpx.post(f"{tally_server.url}/v1/transfers", content=body, headers={"content-type": "application/json"})
    assert sent.json()["results"][0]["result"] == "created"
    read = tally.get_transfer(f"{usd}raw")
    assert read is not None and read.metadata is not None
    again = tally.transfer(f"{usd}raw", f"{usd}alice", f"{usd}bob", "1.00", metadata=read.metadata)
    assert again.result == "exists", "1e0, 1E2, 1.0 and 1 were sent back as they came"


def test_every_refusal_raises_its_own_exception_carrying_the_result(tally: Tally, usd: str) -> None:
    with pytest.raises(InsufficientFunds) as overdraw:
        tally.transfer(f"{usd}big", f"{usd}alice", f"{usd}bob", 1000)
    assert overdraw.value.code == "exceeds_min_balance" and overdraw.value.result.seq is not None
    with pytest.raises(LimitExceeded):
        tally.transfer(f"{usd}cap", f"{usd}world", f"{usd}bob", "500.01")
    with pytest.raises(NotFound):
        tally.transfer(f"{usd}lost", f"{usd}alice", f"{usd}nobody", 1)
    tally.transfer(f"{usd}once", f"{usd}alice", f"{usd}bob", 1)
    with pytest.raises(IdConflict):
        tally.transfer(f"{usd}once", f"{usd}alice", f"{usd}bob", 2)
    alice = tally.account(f"{usd}alice")
    assert alice is not None
    with pytest.raises(VersionMismatch):
        tally.transfer(f"{usd}stale", f"{usd}alice", f"{usd}bob", 1, if_debit_version=alice.version - 1)
    with pytest.raises(VersionMismatch):
        tally.update_account(f"{usd}alice", max_balance="900", if_version=alice.version - 1)
    assert tally.update_account(f"{usd}alice", max_balance="900", if_version=alice.version).result == "updated"
    tally.update_account(f"{usd}bob", closed=True, force=True)
    with pytest.raises(AccountClosed):
        tally.transfer(f"{usd}to-closed", f"{usd}alice", f"{usd}bob", 1)


def test_amounts_are_never_floats_and_never_rounded(tally: Tally, usd: str) -> None:
    with pytest.raises(TypeError, match="float"):
        tally.transfer(f"{usd}f", f"{usd}alice", f"{usd}bob", 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="amount") as decimals:
        tally.transfer(f"{usd}d", f"{usd}alice", f"{usd}bob", Decimal("0.001"))
    assert isinstance(decimals.value, InvalidAmount) and decimals.value.code == "invalid_amount"
    assert (tally.get_transfer(f"{usd}d") or pytest.fail()).state == "failed", "decided once, nothing moved"
    with pytest.raises(ValueError, match="amount: '12,30' is not a decimal"):
        tally.transfer(f"{usd}e", f"{usd}alice", f"{usd}bob", "12,30")
    with pytest.raises(ValueError, match="max_balance"):
        tally.create_account(f"{usd}neg", f"{usd}USD", max_balance="1e5")
    with pytest.raises(InvalidRequest) as refused:
        tally.transfer(f"{usd}no spaces allowed", f"{usd}alice", f"{usd}bob", 1)
    assert refused.value.field == "transfers[0].id" and isinstance(refused.value, ValueError)
    unreachable = Tally("http://127.0.0.1:9", max_retries=0)
    with pytest.raises(TypeError):
        unreachable.transfer("x", "a", "b", 1.5)  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        unreachable.transfer("x", "a", "b", "1.50")


def test_a_batch_answers_every_event_and_raises_for_none(tally: Tally, usd: str) -> None:
    results = tally.transfers(
        [
            {"id": f"{usd}b1", "debit": f"{usd}alice", "credit": f"{usd}bob", "amount": Decimal("10")},
            {"id": f"{usd}b2", "debit": f"{usd}alice", "credit": f"{usd}bob", "amount": Decimal("1000")},
            {"id": f"{usd}b3", "debit": f"{usd}alice", "credit": f"{usd}bob", "amount": 5, "linked": True},
            {"id": f"{usd}b4", "debit": f"{usd}alice", "credit": f"{usd}nobody", "amount": 5},
        ]
    )
    assert [r.result for r in results] == ["created", "exceeds_min_balance", "linked_event_failed", "account_not_found"]
    assert not results[1].ok and results[0].ok


def test_a_hold_posts_when_the_block_ends_and_voids_when_it_raises(tally: Tally, usd: str) -> None:
    with tally.hold(f"{usd}h1", f"{usd}alice", f"{usd}bob", "30.00", timeout=60) as hold:
        alice = tally.account(f"{usd}alice")
        assert alice is not None and alice.available == Decimal("70.00") and alice.balance == Decimal("100.00")
        assert hold.seq is not None
    assert (tally.get_transfer(f"{usd}h1") or pytest.fail()).state == "posted"
    with pytest.raises(RuntimeError), tally.hold(f"{usd}h2", f"{usd}alice", f"{usd}bob", "30.00"):
        raise RuntimeError("the bank said no")
    assert (tally.get_transfer(f"{usd}h2") or pytest.fail()).state == "voided"
    with tally.hold(f"{usd}h3", f"{usd}alice", f"{usd}bob", "30.00") as hold:
        hold.post(Decimal("12.50"))
    assert (tally.get_transfer(f"{usd}h3.post") or pytest.fail()).amount == Decimal("12.50")
    with (
        tally.hold(f"{usd}h5", f"{usd}alice", f"{usd}bob", "30.00") as hold,
        pytest.raises(EventFailed, match="exceeds"),
    ):
        hold.post("40.00")
    assert (tally.get_transfer(f"{usd}h5") or pytest.fail()).state == "posted", (
        "a refused post inside, the whole at exit"
    )
    assert (tally.get_transfer(f"{usd}h5.post2") or pytest.fail()).amount == Decimal("30.00")
    loose = tally.hold(f"{usd}h4", f"{usd}alice", f"{usd}bob", 1)
    loose.void()
    with pytest.raises(HoldNotPending):
        loose.post()
    assert (tally.account(f"{usd}alice") or pytest.fail()).balance == Decimal("27.50")


def test_a_hold_that_expires_cannot_be_posted(tally: Tally, usd: str) -> None:
    hold = tally.hold(f"{usd}brief", f"{usd}alice", f"{usd}bob", 1, timeout=0.05)
    for _ in range(100):
        if (tally.get_transfer(f"{usd}brief") or pytest.fail()).state == "expired":
            break
        __import__("time").sleep(0.05)
    with pytest.raises(HoldNotPending) as expired:
        hold.post()
    assert expired.value.code == "pending_expired"
    renewed = tally.hold(f"{usd}lease", f"{usd}alice", f"{usd}bob", 1, timeout=5)
    assert renewed.renew(60).result == "updated"


def test_balances_as_of_any_seq_and_listings_page_by_themselves(tally: Tally, usd: str) -> None:
    before = tally.transfer(f"{usd}p1", f"{usd}alice", f"{usd}bob", 40)
    tally.transfer(f"{usd}p2", f"{usd}alice", f"{usd}bob", 20)
    then = tally.account(f"{usd}alice", as_of=before.seq)
    assert then is not None and then.balance == Decimal("60.00") and then.as_of == before.seq
    asset = f"{usd}USD"
    for index in range(250):
        tally.create_account(f"{usd}many:{index:03}", asset)
    listed = [account.id for account in tally.accounts(f"{usd}many:", page_size=100)]
    assert listed == [f"{usd}many:{index:03}" for index in range(250)]
    for index in range(130):
        tally.transfer(f"{usd}m{index}", f"{usd}world", f"{usd}many:000", 1)
    moved = list(tally.account_transfers(f"{usd}many:000", page_size=50))
    assert [t.id for t in moved] == [f"{usd}m{index}" for index in range(130)]
    assert list(tally.account_transfers(f"{usd}nobody")) == []


def test_the_journal_resumes_from_the_last_seq_handled(tally: Tally, usd: str) -> None:
    first = tally.transfer(f"{usd}j1", f"{usd}alice", f"{usd}bob", 1)
    assert first.seq is not None
    feed = tally.journal(first.seq - 1, wait=1)
    entry = next(feed)
    assert entry.seq == first.seq and entry.transfer is not None and entry.transfer.id == f"{usd}j1"
    second = tally.transfer(f"{usd}j2", f"{usd}alice", f"{usd}bob", 1)
    resumed = next(tally.journal(entry.seq, wait=1))
    assert resumed.seq == entry.seq + 1 <= (second.seq or 0)


def test_url_and_key_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tally_server: object) -> None:
    monkeypatch.delenv("TALLY_URL", raising=False)
    with pytest.raises(ValueError, match="TALLY_URL"):
        Tally()
    monkeypatch.setenv("TALLY_URL", tally_server.url)  # type: ignore[attr-defined]
    assert Tally().health().status == "ok"


def test_keys_are_sent_and_refusals_raise_their_own_exceptions(tmp_path: Path) -> None:
    binary = find_binary()
    made = subprocess.run(
        [binary, "keys", "create", "--scope", "read", "--data-dir", str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    read_key = made.stdout.splitlines()[0]
    keys = [binary, "keys", "create", "--data-dir", str(tmp_path), "--scope"]
    admin_key = subprocess.run([*keys, "admin"], check=True, capture_output=True, text=True).stdout.splitlines()[0]
    tenant = [*keys, "read", "--accounts", "acme:"]
    tenant_key = subprocess.run(tenant, check=True, capture_output=True, text=True).stdout.splitlines()[0]
    with TallyServer(binary, tmp_path) as server:
        with pytest.raises(Unauthorized):
            Tally(server.url).health()
        reader = Tally(server.url, api_key=read_key)
        assert reader.health().status == "ok"
        with pytest.raises(Forbidden):
            reader.create_asset("USD", 2)
        # A tenant's listing goes on past pages whose transfers it may not see.
        admin = Tally(server.url, api_key=admin_key)
        admin.create_asset("USD", 2)
        admin.create_account("bank", "USD", min_balance=None)
        admin.create_account("acme:a", "USD", min_balance=None)
        admin.create_account("acme:b", "USD", min_balance=None)
        admin.transfers([{"id": f"fund{n}", "debit": "bank", "credit": "acme:a", "amount": 1} for n in range(120)])
        admin.transfer("acme:t1", "acme:b", "acme:a", 1)
        seen = [t.id for t in Tally(server.url, api_key=tenant_key).account_transfers("acme:a", page_size=100)]
        assert seen == ["acme:t1"]
