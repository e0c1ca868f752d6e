"""The Django integration itself: idempotency keys, holds coupled with the app's transaction
(committed, rolled back, and a crash between the commit and the post), the on-commit pattern
inside a rolled-back ``TestCase``, and the system check."""

from __future__ import annotations

import threading
import time
from unittest import mock

import tally_ledger.django as integration
from django.core import checks
from django.core.management import call_command
from django.db import transaction
from django.test import TestCase, TransactionTestCase, override_settings
from jobs.models import Job
from tally_ledger.django import client, hold_on_commit, idempotency_key, ledger_id, reset_client
from tally_ledger.django.models import Outbox
from tally_ledger.django.testing import TallyTestMixin


def ledger() -> tuple[str, str]:
    tally = client()
    tally.create_asset(ledger_id("USD"), 2)
    tally.create_account(ledger_id("world"), ledger_id("USD"), min_balance=None)
    tally.create_account(ledger_id("shop"), ledger_id("USD"))
    return ledger_id("world"), ledger_id("shop")


def state(id: str) -> str:
    transfer = client().get_transfer(id)
    return transfer.state if transfer is not None else "absent"


class IdempotencyKeys(TallyTestMixin, TestCase):
    def test_a_key_names_one_action_on_one_row_the_same_every_time(self) -> None:
        job = Job.objects.create(title="x")
        key = idempotency_key(job, "shortlist", 3)
        self.assertEqual(key, f"{self.tally_prefix}jobs.job:{job.pk}:shortlist:3")
        self.assertEqual(idempotency_key(Job.objects.get(pk=job.pk), "shortlist", 3), key)
        long = idempotency_key(job, "a" * 200, "with spaces")
        self.assertLessEqual(len(long), 128)
        self.assertEqual(long, idempotency_key(job, "a" * 200, "with spaces"))
        with self.assertRaises(ValueError):
            idempotency_key(Job(title="unsaved"), "x")


class HoldsOnCommit(TallyTestMixin, TransactionTestCase):
    def test_a_committed_transaction_posts_its_hold_and_a_rolled_back_one_lets_it_expire(self) -> None:
        world, shop = ledger()
        committed, rolled_back = ledger_id("committed"), ledger_id("rolled-back")
        with transaction.atomic():
            hold_on_commit(committed, world, shop, "10.00", timeout=30)
            self.assertEqual(state(committed), "pending", "held while the transaction runs")
        self.assertEqual(state(committed), "posted")
        self.assertFalse(Outbox.objects.exists())
        with self.assertRaises(RuntimeError), transaction.atomic():
            hold_on_commit(rolled_back, world, shop, "10.00", timeout=0.3)
            raise RuntimeError("the view failed after the hold was placed")
        self.assertFalse(Outbox.objects.exists(), "the outbox row rolled back with the transaction")
        deadline = time.monotonic() + 10
        while state(rolled_back) != "expired":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)

    def test_a_crash_between_the_commit_and_the_post_is_posted_by_tally_outbox(self) -> None:
        world, shop = ledger()
        hold = ledger_id("crashed")
        killed = mock.patch.object(integration, "settle", side_effect=SystemExit("killed after the commit"))
        with killed, self.assertRaises(SystemExit), transaction.atomic():
            hold_on_commit(hold, world, shop, "10.00", timeout=60)
        self.assertEqual(list(Outbox.objects.values_list("hold", flat=True)), [hold])
        self.assertEqual(state(hold), "pending")
        # The drain and a late on-commit callback at once: the post's id is fixed, so once.
        late = threading.Thread(target=integration.settle, args=(hold,))
        late.start()
        call_command("tally_outbox")
        late.join()
        self.assertEqual(state(hold), "posted")
        self.assertFalse(Outbox.objects.exists())
        posts = [t for t in client().account_transfers(shop) if t.post == hold]
        self.assertEqual(len(posts), 1, "posted once")


class OnCommitInATestCase(TallyTestMixin, TestCase):
    def test_capture_on_commit_callbacks_runs_the_post_inside_a_rolled_back_test(self) -> None:
        world, shop = ledger()
        hold = ledger_id("captured")
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            hold_on_commit(hold, world, shop, "1.00", timeout=60)
        self.assertEqual(len(callbacks), 1)
        self.assertEqual(state(hold), "posted")


class SystemCheck(TallyTestMixin, TestCase):
    def test_the_check_warns_when_the_ledger_does_not_answer(self) -> None:
        self.assertEqual([m.id for m in checks.run_checks() if m.id.startswith("tally.")], [])
        with override_settings(TALLY={"URL": "http://127.0.0.1:9", "MAX_RETRIES": 0}):
            reset_client()
            self.assertIn("tally.W001", [m.id for m in checks.run_checks()])
        reset_client()
