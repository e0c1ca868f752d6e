"""``manage.py tally_follow``: follows the ledger's journal, sending the ``journal_entry``
signal for each entry in order and keeping its place in a ``JournalCursor`` row, so a restarted
follower goes on where it stopped. A page's handlers and the cursor's move share a transaction:
what handlers write to the database commits with the cursor, exactly once. Anything else they do
(an email, a call) happens at least once (see ``signals``)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from ...._errors import TallyError
from ...._models import JournalEntry
from ... import client
from ...models import JournalCursor
from ...signals import journal_entry


class Command(BaseCommand):
    help = "Follow the Tally journal, sending the journal_entry signal for every entry."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default="default", help="the cursor's name: one per independent follower")
        parser.add_argument("--once", action="store_true", help="stop when caught up instead of waiting for more")

    def handle(self, *args: Any, **options: Any) -> None:
        name, once = options["name"], options["once"]
        JournalCursor.objects.get_or_create(name=name)
        tally, handled, pause = client(), 0, 0.1
        while True:
            cursor = JournalCursor.objects.get(name=name)
            try:
                entries, next_after = tally.journal_page(cursor.seq, wait=0 if once else 25.0)
            except TallyError as error:
                if error.status not in (None, 429, 503, 504):
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            pause = 0.1
            if next_after == cursor.seq:
                if once:
                    break
                continue
            handled += self.handle_page(name, cursor.seq, entries, next_after)
        self.stdout.write(f"handled {handled} entries; at seq {JournalCursor.objects.get(name=name).seq}")

    def handle_page(self, name: str, expected: int, entries: list[JournalEntry], next_after: int) -> int:
        """Runs the handlers for a page and moves the cursor in one transaction, holding the
        cursor's row: handlers' database writes and the cursor commit together, and a second
        follower with the same name waits instead of handling the page twice."""
        with transaction.atomic():
            cursor = JournalCursor.objects.select_for_update().get(name=name)
            if cursor.seq != expected:
                return 0  # another follower handled it meanwhile
            for entry in entries:
                journal_entry.send(sender=self.__class__, entry=entry)
            cursor.seq = next_after
            cursor.save(update_fields=["seq", "updated_at"])
        return len(entries)
