"""Concurrent changes to the genomes of one tree, and of several: the naive version loses
changes; the Tally version keeps every change, never lets two in one tree overlap, lets
different trees overlap, and refuses a write under a stale lease."""

from __future__ import annotations

import itertools
import time

from django.test import TransactionTestCase
from tally_ledger.django import client, ledger_id
from tally_ledger.django.testing import TallyTestMixin
from tallydemo.concurrency import concurrently

from . import naive, services
from .models import Genome, Tree

TRIES = 5
CHANGES = 8


def tree_with_genomes(count: int) -> tuple[Tree, list[Genome]]:
    tree = Tree.objects.create(name="primates")
    services.plant(tree)
    root = Genome.objects.create(tree=tree, name="root")
    return tree, [Genome.objects.create(tree=tree, parent=root, name=f"g{n}") for n in range(count)]


def overlapping(spans: list[tuple[float, float]]) -> bool:
    spans = sorted(spans)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


class TreeChanges(TallyTestMixin, TransactionTestCase):
    def test_the_naive_version_loses_changes(self) -> None:
        lost = 0
        for _ in range(TRIES):
            tree, genomes = tree_with_genomes(CHANGES)
            concurrently(lambda n, genomes=genomes: naive.change(genomes[n], f"c{n}"), range(CHANGES))
            lost += len(Tree.objects.get(pk=tree.pk).chunks) < CHANGES
        print(f"\nnaive: changes lost in {lost} of {TRIES} trees")
        self.assertGreater(lost, 0)

    def test_with_tally_one_tree_is_changed_one_at_a_time_and_trees_in_parallel(self) -> None:
        for _ in range(TRIES):
            tree, genomes = tree_with_genomes(CHANGES)
            started = time.monotonic()
            spans = concurrently(lambda n, genomes=genomes: services.change(genomes[n], f"c{n}"), range(CHANGES))
            one_tree = time.monotonic() - started
            self.assertEqual(sorted(Tree.objects.get(pk=tree.pk).chunks), sorted(f"c{n}" for n in range(CHANGES)))
            self.assertFalse(overlapping(spans), "two changes in one tree held the lease at once")  # type: ignore[arg-type]
            forest = [tree_with_genomes(1) for _ in range(CHANGES)]
            started = time.monotonic()
            # Each holds its tree a while, so side by side they overlap unless they were serialized.
            spans = concurrently(
                lambda n, forest=forest: services.change(forest[n][1][0], "c", work=0.2), range(CHANGES)
            )
            many_trees = time.monotonic() - started
            self.assertTrue(overlapping(spans), "changes in different trees ran side by side")  # type: ignore[arg-type]
            print(f"\n{CHANGES} changes: one tree {one_tree * 1000:.0f} ms, {CHANGES} trees {many_trees * 1000:.0f} ms")

    def test_a_holder_whose_lease_was_taken_over_cannot_write(self) -> None:
        tree, (genome,) = tree_with_genomes(1)
        tally = client()
        stale = tally.lease(services.lock_account(tree), ttl=5, to=ledger_id(services.LEASES))
        services.claim(tree.pk, stale.token)
        read = [*Tree.objects.get(pk=tree.pk).chunks, "stale"]
        tally.void(f"{stale.id}.lost", stale.id)  # its lease ends (as if it had stalled past its ttl) ...
        services.change(genome, "newer")  # ... a newer holder claims the root and writes ...
        with self.assertRaises(services.StaleLease):
            services.write(tree.pk, stale.token, read)  # ... and the stale holder's write is refused
        stale.release()
        self.assertEqual(Tree.objects.get(pk=tree.pk).chunks, ["newer"])
        with self.assertRaises(services.StaleLease):
            services.claim(tree.pk, stale.token)
