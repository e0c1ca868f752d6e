"""The hand history, rebuilt from the journal: ``manage.py tally_follow`` sends every entry; the
ones that moved chips at a table become ``HandEvent`` rows. Stored by seq, so an entry sent
twice (a follower that stopped before saving its cursor) is stored once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tally_ledger import JournalEntry
from tally_ledger.django import ledger_id

from .models import HandEvent


def record(sender: Any, entry: JournalEntry, **_: Any) -> None:
    transfer = entry.transfer
    if transfer is None or transfer.state == "failed" or transfer.amount is None:
        return
    table = ledger_id("poker:")
    if not (transfer.debit or "").startswith(table) and not (transfer.credit or "").startswith(table):
        return
    HandEvent.objects.get_or_create(
        seq=entry.seq,
        defaults={
            "transfer": transfer.id,
            "debit": transfer.debit or "",
            "credit": transfer.credit or "",
            "amount": Decimal(transfer.amount),
        },
    )
