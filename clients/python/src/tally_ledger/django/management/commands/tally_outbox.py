"""``manage.py tally_outbox``: posts the holds whose transaction committed but whose post did
not happen (the process died in between). Run it from cron or a worker every minute, well
within the holds' timeouts."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ... import settle
from ...models import Outbox


class Command(BaseCommand):
    help = "Post the holds left in the outbox by transactions that committed."

    def handle(self, *args: Any, **options: Any) -> None:
        pending = list(Outbox.objects.filter(failure="").values_list("hold", flat=True))
        for hold in pending:
            settle(hold)
        failed = Outbox.objects.exclude(failure="").count()
        self.stdout.write(f"posted {len(pending)} held transfers; {failed} could not be posted (see the outbox)")
