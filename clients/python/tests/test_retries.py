"""Retries with the same ids: a server killed and restarted under a running call, answers lost
after the ledger applied a transfer, and what the caller is told when no attempt is left."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import httpx
import pytest

from tally_ledger import OutcomeUnknown, RateLimited, Tally, Unavailable
from tally_ledger.testing import TallyServer


def setup_ledger(tally: Tally, prefix: str = "") -> None:
    tally.create_asset(f"{prefix}EUR", 2)
    tally.create_account(f"{prefix}world", f"{prefix}EUR", min_balance=None)
    tally.create_account(f"{prefix}alice", f"{prefix}EUR")


def journaled(tally: Tally, id: str) -> int:
    """How many journal entries are the transfer ``id``."""
    durable, count = tally.health().durable_seq, 0
    for entry in tally.journal(0, wait=0):
        count += entry.data.get("id") == id
        if entry.seq >= durable:
            return count
    raise AssertionError("the journal ends")


def test_a_call_made_while_the_server_is_down_succeeds_once_it_is_back() -> None:
    with TallyServer() as server:
        tally = Tally(server.url, max_retries=30, deadline=60, timeout=5)
        setup_ledger(tally)
        server.kill()
        restarted = threading.Timer(0.5, server.start)
        restarted.start()
        result = tally.transfer("during-restart", "world", "alice", Decimal("5.00"))
        restarted.join()
        assert result.result in ("created", "exists")
        assert journaled(tally, "during-restart") == 1, "applied once"
        assert (tally.account("alice") or pytest.fail()).balance == Decimal("5.00")


class LosesAnswers(httpx.BaseTransport):
    """Sends each request to the ledger, then loses the first ``lose`` answers: the ledger
    applied the request, and the client never heard."""

    def __init__(self, lose: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose = lose
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.sent += 1
        if request.method == "POST" and self.lose > 0:
            self.lose -= 1
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


def test_a_lost_answer_is_retried_with_the_same_id_and_applied_once(
    tally_server: TallyServer, tally_prefix: str
) -> None:
    tally = Tally(tally_server.url)
    setup_ledger(tally, tally_prefix)
    lossy = LosesAnswers(lose=2)
    flaky = Tally(tally_server.url, transport=lossy, max_retries=3)
    result = flaky.transfer(f"{tally_prefix}payout", f"{tally_prefix}world", f"{tally_prefix}alice", "10.00")
    assert result.result == "exists" and lossy.sent == 3, "applied by the first attempt, confirmed by the third"
    assert (tally.account(f"{tally_prefix}alice") or pytest.fail()).balance == Decimal("10.00")


def test_when_every_answer_is_lost_the_outcome_is_unknown_and_resending_is_safe(
    tally_server: TallyServer, tally_prefix: str
) -> None:
    tally = Tally(tally_server.url)
    setup_ledger(tally, tally_prefix)
    flaky = Tally(tally_server.url, transport=LosesAnswers(lose=10), max_retries=2)
    with pytest.raises(OutcomeUnknown, match="same ids"):
        flaky.transfer(f"{tally_prefix}payout", f"{tally_prefix}world", f"{tally_prefix}alice", "10.00")
    again = tally.transfer(f"{tally_prefix}payout", f"{tally_prefix}world", f"{tally_prefix}alice", "10.00")
    assert again.result == "exists", "it had been applied; resending did not apply it again"
    assert (tally.account(f"{tally_prefix}alice") or pytest.fail()).balance == Decimal("10.00")


class Busy(httpx.BaseTransport):
    """Answers 503 with ``Retry-After`` ``busy`` times, then passes requests through."""

    def __init__(self, busy: int, status: int = 503) -> None:
        self.inner = httpx.HTTPTransport()
        self.busy, self.status = busy, status
        self.at: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.at.append(time.monotonic())
        if self.busy > 0:
            self.busy -= 1
            body = b'{"error":{"code":"queue_full","message":"full","field":null}}'
            return httpx.Response(self.status, headers={"retry-after": "1"}, content=body)
        return self.inner.handle_request(request)


def test_a_busy_ledger_is_asked_again_after_retry_after_then_reported_unavailable(tally_server: TallyServer) -> None:
    busy = Busy(busy=1)
    assert Tally(tally_server.url, transport=busy, max_retries=2).health().status == "ok"
    assert busy.at[1] - busy.at[0] >= 1.0, "Retry-After: 1 was honoured"
    with pytest.raises(Unavailable, match="Nothing was applied"):
        Tally(tally_server.url, transport=Busy(busy=5), max_retries=1).health()
    with pytest.raises(RateLimited):
        Tally(tally_server.url, transport=Busy(busy=5, status=429), max_retries=1).health()


class Answers(httpx.BaseTransport):
    """Answers the first ``times`` requests with ``status`` and ``body`` (without passing them
    on), then passes requests through."""

    def __init__(self, times: int, status: int, body: bytes) -> None:
        self.inner = httpx.HTTPTransport()
        self.times, self.status, self.body = times, status, body

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.times > 0:
            self.times -= 1
            return httpx.Response(self.status, content=self.body)
        return self.inner.handle_request(request)


def test_a_504_is_resent_with_the_same_ids_and_reported_unknown_when_it_persists(
    tally_server: TallyServer, tally_prefix: str
) -> None:
    tally = Tally(tally_server.url)
    setup_ledger(tally, tally_prefix)
    timeout = b'{"error":{"code":"outcome_unknown","message":"the writer stalled","field":null}}'
    p = tally_prefix
    once = Tally(tally_server.url, transport=Answers(1, 504, timeout), max_retries=2)
    assert once.transfer(f"{p}after-504", f"{p}world", f"{p}alice", 1).result == "created"
    with pytest.raises(OutcomeUnknown, match="same ids") as unknown:
        Tally(tally_server.url, transport=Answers(9, 504, timeout), max_retries=2).transfer(
            f"{p}x", f"{p}world", f"{p}alice", 1
        )
    assert unknown.value.status == 504


def test_a_change_without_an_id_is_not_resent_after_its_answer_was_lost(
    tally_server: TallyServer, tally_prefix: str
) -> None:
    tally = Tally(tally_server.url)
    setup_ledger(tally, tally_prefix)
    before = tally.account(f"{tally_prefix}alice")
    assert before is not None

    class LosesPatchAnswers(LosesAnswers):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            response.read()
            if request.method == "PATCH":
                raise httpx.ReadError("connection reset by peer", request=request)
            return response

    flaky = Tally(tally_server.url, transport=LosesPatchAnswers(0), max_retries=3)
    with pytest.raises(OutcomeUnknown, match="no id"):
        flaky.update_account(f"{tally_prefix}alice", max_balance="900", if_version=before.version)
    after = tally.account(f"{tally_prefix}alice")
    assert after is not None and after.version == before.version + 1 and after.max_balance == Decimal("900.00")


def test_a_stalled_ledger_reports_its_health_instead_of_failing(tally_server: TallyServer) -> None:
    stalled = (
        b'{"status":"stalled","engine":"embedded","last_seq":5,"durable_seq":4,"queue_depth":3,"writer_busy_ms":6000}'
    )
    assert Tally(tally_server.url, transport=Answers(1, 503, stalled)).health().status == "stalled"
