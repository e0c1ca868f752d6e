"""``journal_entry`` is sent by ``manage.py tally_follow`` for each journal entry, in order,
with ``entry`` (a ``JournalEntry``). Delivery is at least once: a follower that stops between
running the handlers and saving its cursor sends the entry again when it starts, so handlers
must be idempotent (key what they write by ``entry.seq``)."""

from django.dispatch import Signal

journal_entry = Signal()
