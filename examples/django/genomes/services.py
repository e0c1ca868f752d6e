"""A change on Tally: a lease on the tree's root (a hold on a one-permit account, renewed while
the change works) keeps concurrent changes in one tree apart, and changes in different trees
run in parallel. The write-back is a compare-and-swap on the root's fencing token: a holder
whose lease was lost (it stalled past its ttl and another took over) cannot write stale chunks."""

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


def change(genome: Genome, label: str, *, work: float = WORK_SECONDS) -> tuple[float, float]:
    """Applies a change under the tree's lease; returns when it held the lease (for tests)."""
    tree = Tree(pk=genome.tree_id)
    with client().lease(lock_account(tree), ttl=LEASE_TTL, to=ledger_id(LEASES), wait=60) as lease:
        held_from = time.monotonic()
        root = Tree.objects.get(pk=genome.tree_id)
        chunks = [*root.chunks, label]
        time.sleep(work)
        lease.check()
        written = Tree.objects.filter(pk=root.pk, fence__lt=lease.token).update(chunks=chunks, fence=lease.token)
        if written == 0:
            raise StaleLease(f"tree {root.pk} was written under a newer lease than {lease.token}")
        return held_from, time.monotonic()
