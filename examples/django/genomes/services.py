"""A change on Tally: a lease on the tree's root (a hold on a one-permit account, renewed while
the change works) keeps concurrent changes in one tree apart, and changes in different trees
run in parallel. The holder claims the root's fence with its token before it reads, and writes
back only while the fence is still its own: a holder whose lease was lost (it stalled past its
ttl and another took over, claiming a newer token) cannot write stale chunks."""

from __future__ import annotations

import time

from tally_ledger.django import client, ledger_id

from .models import Genome, Tree

ASSET = "LOCK"
LEASES = "genomes:leases"
LEASE_TTL = 5.0
WORK_SECONDS = 0.02


class StaleLease(Exception):
    """A newer lease wrote the tree since this one was taken."""


def lock_account(tree: Tree) -> str:
    return ledger_id(f"genomes:tree:{tree.pk}:lock")


def plant(tree: Tree) -> None:
    """The tree's lock: one permit (``min_balance`` -1), leases credited to a common account."""
    tally = client()
    tally.create_asset(ledger_id(ASSET), 0)
    tally.create_account(ledger_id(LEASES), ledger_id(ASSET), min_balance=None)
    tally.create_account(lock_account(tree), ledger_id(ASSET), min_balance=-1)


def claim(tree_id: int, token: int) -> None:
    """Sets the root's fence to this lease's token before anything is read: from then on, only
    a write under this token (or a newer one, which claims in turn) can succeed."""
    if Tree.objects.filter(pk=tree_id, fence__lt=token).update(fence=token) == 0:
        raise StaleLease(f"tree {tree_id} was claimed under a newer lease than {token}")


def write(tree_id: int, token: int, chunks: list[str]) -> None:
    """Writes the chunks only if the fence is still this lease's: a holder whose lease ended
    and was taken over (the newer holder claimed a larger token) writes nothing."""
    if Tree.objects.filter(pk=tree_id, fence=token).update(chunks=chunks) == 0:
        raise StaleLease(f"tree {tree_id} was claimed under a newer lease than {token}")


def change(genome: Genome, label: str, *, work: float = WORK_SECONDS) -> tuple[float, float]:
    """Applies a change under the tree's lease; returns when it held the lease (for tests)."""
    tree = Tree(pk=genome.tree_id)
    with client().lease(lock_account(tree), ttl=LEASE_TTL, to=ledger_id(LEASES), wait=60) as lease:
        held_from = time.monotonic()
        claim(genome.tree_id, lease.token)
        chunks = [*Tree.objects.get(pk=genome.tree_id).chunks, label]
        time.sleep(work)
        lease.check()
        write(genome.tree_id, lease.token, chunks)
        return held_from, time.monotonic()
