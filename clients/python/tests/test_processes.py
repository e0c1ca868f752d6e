"""The client across threads and processes: the classic races, made from many threads through
one shared client, and a client used on both sides of ``os.fork``."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from decimal import Decimal

import pytest

from tally_ledger import InsufficientFunds, LimitExceeded, Tally


def race(threads: int, attempt: Callable[[int], bool]) -> int:
    """Runs ``attempt`` from ``threads`` threads released at once; how many succeeded."""
    start, wins, lock = threading.Barrier(threads), [0], threading.Lock()

    def run(index: int) -> None:
        start.wait()
        if attempt(index):
            with lock:
                wins[0] += 1

    workers = [threading.Thread(target=run, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return wins[0]


def test_two_withdrawals_racing_for_one_balance_never_overdraw(tally: Tally, tally_prefix: str) -> None:
    p = tally_prefix
    tally.create_asset(f"{p}USD", 2)
    tally.create_account(f"{p}bank", f"{p}USD", min_balance=None)
    tally.create_account(f"{p}alice", f"{p}USD")
    tally.transfer(f"{p}deposit", f"{p}bank", f"{p}alice", "100.00")

    def withdraw(index: int) -> bool:
        try:
            tally.transfer(f"{p}withdrawal-{index}", f"{p}alice", f"{p}bank", "60.00")
            return True
        except InsufficientFunds:
            return False

    assert race(16, withdraw) == 1, "exactly one of the sixteen withdrawals of 60 fits a balance of 100"
    assert (tally.account(f"{p}alice") or pytest.fail()).balance == Decimal("40.00")


def test_a_job_with_two_slots_takes_two_applicants_and_a_rejection_frees_its_slot(
    tally: Tally, tally_prefix: str
) -> None:
    p = tally_prefix
    tally.create_asset(f"{p}SLOT", 0)
    tally.create_account(f"{p}applicants", f"{p}SLOT", min_balance=None)
    tally.create_account(f"{p}job", f"{p}SLOT", max_balance=2)

    def apply(index: int) -> bool:
        try:
            # A slot is held while the application is reviewed, and taken only when accepted.
            tally.hold(f"{p}application-{index}", f"{p}applicants", f"{p}job", 1, timeout=300)
            return True
        except LimitExceeded:
            return False

    assert race(12, apply) == 2
    held = [t for t in tally.account_transfers(f"{p}job") if t.state == "pending"]
    assert len(held) == 2
    tally.void(f"{held[0].id}.void", held[0].id)  # rejected: its slot is free again
    assert race(6, lambda index: apply(100 + index)) == 1


def test_a_client_works_on_both_sides_of_a_fork(tally: Tally, tally_prefix: str) -> None:
    p = tally_prefix
    tally.create_asset(f"{p}USD", 2)
    tally.create_account(f"{p}world", f"{p}USD", min_balance=None)
    tally.create_account(f"{p}alice", f"{p}USD")
    tally.transfer(f"{p}before", f"{p}world", f"{p}alice", 1)  # the parent has a live connection
    parents = tally._http
    assert parents is not None
    child = os.fork()
    if child == 0:
        try:
            tally.transfer(f"{p}in-child", f"{p}world", f"{p}alice", 2)
            os._exit(0 if tally._http is not parents else 2)  # its own connections, not its parent's
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child made its own connection"
    tally.transfer(f"{p}after", f"{p}world", f"{p}alice", 3)
    assert (tally.account(f"{p}alice") or pytest.fail()).balance == Decimal("6.00")
