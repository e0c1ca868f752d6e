"""Test support for Django suites that use a real ledger.

Django rolls each test's database back (or flushes it), but the ledger is durable: the same
primary keys come back in the next test while the ledger still holds what the last one made.
``TallyTestMixin`` gives every test its own ``settings.TALLY["PREFIX"]``, so ``ledger_id`` and
``idempotency_key`` name different ledger objects in every test.

With ``TestCase`` (each test in a transaction that is rolled back), ``on_commit`` callbacks never
run: wrap the code under test in ``self.captureOnCommitCallbacks(execute=True)`` to run them,
so the holds placed with ``hold_on_commit`` are posted without a slow ``TransactionTestCase``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.test.utils import override_settings

from . import reset_client


class TallyTestMixin:
    """Mix into a ``TestCase`` or ``TransactionTestCase``: ``self.tally_prefix`` is unique to
    the test and is ``settings.TALLY["PREFIX"]`` while it runs."""

    tally_prefix: str

    def setUp(self) -> None:
        self.tally_prefix = f"t{uuid.uuid4().hex[:10]}-"
        tally = {**getattr(settings, "TALLY", {}), "PREFIX": self.tally_prefix}
        override = override_settings(TALLY=tally)
        override.enable()
        reset_client()
        cleanup: Any = self.addCleanup  # type: ignore[attr-defined]
        cleanup(override.disable)
        cleanup(reset_client)
        super().setUp()  # type: ignore[misc]
