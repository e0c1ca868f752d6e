"""A change as the story wrote it: lock the tree's root, read its shared chunks, work, write
them back. The lock was ``Tree.objects.select_for_update().filter(pk=...)``: a lazy queryset
that was never evaluated, so no lock was ever taken, and two changes in one tree interleave:
each writes back the chunks it read, and the other's change is lost."""

import time

from .models import Genome, Tree

#: What a change takes between reading the chunks and writing them back (the real work).
WORK_SECONDS = 0.02


def change(genome: Genome, label: str) -> None:
    Tree.objects.select_for_update().filter(pk=genome.tree_id)  # never evaluated: no lock
    root = Tree.objects.get(pk=genome.tree_id)
    chunks = [*root.chunks, label]
    time.sleep(WORK_SECONDS)
    root.chunks = chunks
    root.save(update_fields=["chunks"])
