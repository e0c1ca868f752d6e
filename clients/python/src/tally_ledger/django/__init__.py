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
import re
import threading
from typing import Any

from .._amounts import Amount
from .._models import Result
from .._sync import Tally

_lock = threading.Lock()
_client: Tally | None = None

#: What a transfer id may hold (the server's charset), and its longest length.
_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


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
    text = ledger_id(":".join([label, str(instance.pk), action, *(str(part) for part in parts)]))
    if _ID.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:40]
    head = re.sub(r"[^A-Za-z0-9._:@-]", "-", ledger_id(f"{label}:{action}"))[:80]
    return f"{head}:{digest}"


def hold_on_commit(
    id: str, debit: str, credit: str, amount: Amount, *, timeout: float, using: str | None = None
) -> Result:
    """Inside ``transaction.atomic()``: places a hold that expires after ``timeout`` seconds,
    records an outbox row in the same transaction, and posts the hold when the transaction
    commits. Raises as ``Tally.transfer`` does (``InsufficientFunds``, ...), so the view can
    roll back. Choose ``timeout`` longer than the transaction can take."""
    from django.db import transaction

    from .models import Outbox

    placed = client().transfer(id, debit, credit, amount, pending=True, timeout=timeout)
    Outbox.objects.using(using).get_or_create(hold=id)
    transaction.on_commit(lambda: settle(id, using=using), using=using)
    return placed


def settle(hold: str, *, using: str | None = None) -> None:
    """Posts a hold recorded in the outbox and removes its row. Posting is idempotent (its id
    is ``<hold>.post``), so a crash anywhere here only means posting again later."""
    from .._errors import HoldNotPending
    from .models import Outbox

    try:
        client().post(f"{hold}.post", hold)
    except HoldNotPending as expired:
        if expired.code != "pending_already_posted":
            Outbox.objects.using(using).filter(hold=hold).update(failure=str(expired))
            return
    Outbox.objects.using(using).filter(hold=hold).delete()
