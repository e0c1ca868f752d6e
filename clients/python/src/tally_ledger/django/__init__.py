"""Tally for Django: one client per process from settings, idempotency keys made from model
instances, and holds coupled with the app's own transaction.

Settings (each falls back to the environment: ``TALLY_URL``, ``TALLY_API_KEY``)::

    INSTALLED_APPS = [..., "tally_ledger.django"]
    TALLY = {"URL": "http://127.0.0.1:7420", "API_KEY": "tally_...", "TIMEOUT": 10.0, "MAX_RETRIES": 3}

Coupling: a Django transaction has no hook that runs on rollback, so money must never move in
one step inside it. ``hold_on_commit`` places a hold with a timeout inside
``transaction.atomic()``, records the intent in an outbox row of the same transaction, and posts
the hold once the transaction commits. A rollback removes the outbox row and the hold expires by
itself; a crash between the commit and the post leaves the row, which ``manage.py tally_outbox``
posts later (the post's id is fixed, so posting twice is impossible).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from decimal import Decimal
from typing import Any

from .._amounts import Amount
from .._models import Result
from .._sync import Tally

_lock = threading.Lock()
_client: Tally | None = None
log = logging.getLogger("tally_ledger.django")


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread of the parent may have held it at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)

#: What a key may be as written: the server's id charset, at most 118 characters, so the
#: suffixes the client adds (``.post``, ``.post2``, ``.void``) keep it within the 128 an id
#: may have.
_KEY = re.compile(r"[A-Za-z0-9._@-][A-Za-z0-9._:@-]{0,117}")


def _setting(name: str) -> Any:
    from django.conf import settings

    return getattr(settings, "TALLY", {}).get(name)


def client() -> Tally:
    """The process's client, made on first use from ``settings.TALLY``. It is safe to share
    between threads and after a fork (gunicorn and Celery prefork workers make their own
    connections)."""
    global _client
    with _lock:
        if _client is None:
            _client = Tally(
                _setting("URL"),
                api_key=_setting("API_KEY"),
                timeout=_setting("TIMEOUT") or 10.0,
                max_retries=_setting("MAX_RETRIES") if _setting("MAX_RETRIES") is not None else 3,
            )
        return _client


def reset_client() -> None:
    """Forgets the client (tests that change ``settings.TALLY`` call this)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None


def ledger_id(name: str) -> str:
    """``name`` under ``settings.TALLY["PREFIX"]`` (empty unless set): the prefix keeps apps,
    or tests, that share one ledger apart."""
    return f"{_setting('PREFIX') or ''}{name}"


def idempotency_key(instance: Any, action: str, *parts: object) -> str:
    """A transfer id that names one action on one saved model instance, the same every time:
    a retried view, a re-delivered task or a restarted worker computes the same id, and the
    ledger applies an id once. ``jobs.application:42:shortlist``; ids that would be longer than
    128 characters, or hold other characters, end in a SHA-256 digest instead."""
    if instance.pk is None:
        raise ValueError("idempotency_key: save the instance first; an unsaved one has no stable identity")
    label = instance._meta.label_lower
    words = [str(instance.pk), action, *(_word(part) for part in parts)]
    text = ledger_id(":".join([label, *words]))
    # ":" joins the words, so a word holding one would read as two: such keys are hashed.
    if _KEY.fullmatch(text) and not any(":" in word for word in words):
        return text
    digest = hashlib.sha256(repr((label, words)).encode()).hexdigest()[:40]
    head = re.sub(r"[^A-Za-z0-9._@-]", "-", f"{label}.{action}")[:60]
    return ledger_id(f"{head}:{digest}")


def _word(part: object) -> str:
    """A part as it goes into a key: a decimal by its value (30 and 30.00 are one amount)."""
    if isinstance(part, Decimal):
        return format(part.normalize(), "f")
    return str(part)


def hold_on_commit(
    id: str, debit: str, credit: str, amount: Amount, *, timeout: float, using: str | None = None
) -> Result:
    """Inside ``transaction.atomic()``: places a hold that expires after ``timeout`` seconds,
    records an outbox row in the same transaction, and posts the hold when the transaction
    commits. Raises as ``Tally.transfer`` does (``InsufficientFunds``, ...), so the view can
    roll back. Choose ``timeout`` longer than the transaction can take."""
    from django.db import transaction

    from .._errors import HoldNotPending
    from .models import Outbox

    tally = client()
    placed = tally.transfer(id, debit, credit, amount, pending=True, timeout=timeout)
    if placed.result == "exists":
        # A retry: the hold was placed before, by a transaction that may have rolled back.
        hold = tally.get_transfer(id)
        state = hold.state if hold is not None else "gone"
        if state == "posted":
            return placed  # its transaction committed and it was posted: nothing left to do
        if state != "pending":
            refused = HoldNotPending(
                placed, None, f"{id}: the hold placed earlier is {state}: use a new id to hold again"
            )
            refused.code = "pending_expired" if state == "expired" else "pending_already_voided"
            raise refused
    Outbox.objects.using(using).get_or_create(hold=id)
    transaction.on_commit(lambda: settle(id, using=using), using=using, robust=True)
    return placed


def settle(hold: str, *, using: str | None = None) -> None:
    """Posts a hold recorded in the outbox and removes its row. Posting is idempotent (its id
    is ``<hold>.post``), so a crash anywhere here only means posting again later. A ledger that
    cannot be reached leaves the row for ``tally_outbox``; a hold that expired first is marked
    on its row for a person to see."""
    from .._errors import HoldNotPending, TallyError
    from .models import Outbox

    try:
        client().post(f"{hold}.post", hold)
    except HoldNotPending as expired:
        if expired.code != "pending_already_posted":
            log.error("hold %s could not be posted: %s", hold, expired)
            Outbox.objects.using(using).filter(hold=hold).update(failure=str(expired))
            return
    except TallyError as error:
        log.warning("hold %s not posted yet (%s); tally_outbox will post it", hold, error)
        return
    Outbox.objects.using(using).filter(hold=hold).delete()
