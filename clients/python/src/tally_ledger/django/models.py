"""The integration's two tables: the outbox of holds to post once their transaction committed,
and the cursors of journal followers."""

from __future__ import annotations

from django.db import models


class Outbox(models.Model):
    """A hold placed inside a transaction that committed, still to be posted. The row commits
    with the transaction (so a rollback leaves none) and is removed once the post is done."""

    hold = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    #: Why posting failed for good (the hold expired before it was posted), for a person to see.
    failure = models.TextField(blank=True, default="")

    class Meta:
        verbose_name_plural = "outbox"


class JournalCursor(models.Model):
    """The last journal seq a follower (``manage.py tally_follow --name``) has handled."""

    name = models.CharField(max_length=100, unique=True)
    seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
