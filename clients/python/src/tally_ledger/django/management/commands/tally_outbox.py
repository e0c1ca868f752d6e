"""``manage.py tally_outbox``: posts the holds whose transaction committed but whose post did
not happen (the process died in between). Run it from cron or a worker every minute, well
within the holds' timeouts."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ... import settle
from ...models import Outbox


class Command(BaseCommand):
    help = "Post the holds left in the outbox by transactions that committed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default", help="the database whose outbox to drain")

    def handle(self, *args: Any, **options: Any) -> None:
        using = options["database"]
        pending = list(Outbox.objects.using(using).filter(failure="").values_list("hold", flat=True))
        for hold in pending:
            settle(hold, using=using)  # each row on its own: one that fails never blocks the rest
        left = Outbox.objects.using(using).filter(failure="").count()
        failed = Outbox.objects.using(using).exclude(failure="").count()
        posted = len(pending) - left
        self.stdout.write(
            f"{posted} of {len(pending)} held transfers posted; {left} left for the next run; {failed} failed"
        )
