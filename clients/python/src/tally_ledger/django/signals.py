"""``journal_entry`` is sent by ``manage.py tally_follow`` for each journal entry, in order,
with ``entry`` (a ``JournalEntry``), inside the transaction that moves the follower's cursor:
what a handler writes to the database commits exactly once with it. Anything else a handler
does (an email, a call to another service) happens at least once: a follower that stops before
its transaction commits sends the page again. Such handlers must be idempotent (key what they
do by ``entry.seq``)."""

from django.dispatch import Signal

journal_entry = Signal()
