"""``manage.py tally_follow``: follows the ledger's journal, sending the ``journal_entry``
signal for each entry in order and keeping its place in a ``JournalCursor`` row, so a restarted
follower goes on where it stopped. Delivery is at least once (see ``signals``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ... import client
from ...models import JournalCursor
from ...signals import journal_entry


class Command(BaseCommand):
    help = "Follow the Tally journal, sending the journal_entry signal for every entry."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default="default", help="the cursor's name: one per independent follower")
        parser.add_argument("--once", action="store_true", help="stop when caught up instead of waiting for more")

    def handle(self, *args: Any, **options: Any) -> None:
        cursor, _ = JournalCursor.objects.get_or_create(name=options["name"])
        tally = client()
        caught_up = tally.health().durable_seq if options["once"] else None
        handled = 0
        if caught_up is not None and cursor.seq >= caught_up:
            self.stdout.write(f"caught up at seq {cursor.seq}")
            return
        for entry in tally.journal(cursor.seq, wait=0 if options["once"] else 25.0):
            journal_entry.send(sender=self.__class__, entry=entry)
            cursor.seq = entry.seq
            cursor.save(update_fields=["seq", "updated_at"])
            handled += 1
            if caught_up is not None and entry.seq >= caught_up:
                break
        self.stdout.write(f"handled {handled} entries; at seq {cursor.seq}")
