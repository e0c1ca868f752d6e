"""A job with two slots and many applicants at once: the naive version overbooks, the Tally
version shortlists exactly two, every time."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from decimal import Decimal

from django.db import connection, transaction
from django.test import TransactionTestCase
from tally_ledger import HoldNotPending
from tally_ledger.django import client
from tally_ledger.django.models import Outbox
from tally_ledger.django.testing import TallyTestMixin
from tallydemo.concurrency import concurrently

from . import naive, services
from .models import Application, Job

TRIES = 20


class JobSlots(TallyTestMixin, TransactionTestCase):
    def run_applicants(self, shortlist: Callable[[Application], bool], applicants: int) -> int:
        """Opens a job with two slots, shortlists ``applicants`` applications from as many
        threads at once, and returns how many ended up shortlisted."""
        job = Job.objects.create(title="Backend engineer", slots=2)
        services.open_job(job)
        applications = [Application.objects.create(job=job, applicant=f"a{n}") for n in range(applicants)]
        concurrently(shortlist, applications)
        return Application.objects.filter(job=job, status=Application.SHORTLISTED).count()

    def run_applicants_in_processes(self, shortlist: Callable[[Application], bool], applicants: int) -> int:
        """The same, each applicant in a process of its own (as gunicorn workers are): forked
        children open their own database connections and ledger connections."""
        job = Job.objects.create(title="Data engineer", slots=2)
        services.open_job(job)
        applications = [Application.objects.create(job=job, applicant=f"p{n}") for n in range(applicants)]
        connection.close()  # a child must not share the parent's database connection
        read, write = os.pipe()
        children = []
        for application in applications:
            child = os.fork()
            if child == 0:
                os.close(write)
                os.read(read, 1)  # released together
                try:
                    shortlist(application)
                    connection.close()
                    os._exit(0)
                except BaseException:
                    os._exit(1)
            children.append(child)
        os.close(read)
        os.write(write, b"x" * applicants)
        os.close(write)
        codes = [os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) for child in children]
        self.assertEqual(codes, [0] * applicants)
        return Application.objects.filter(job=job, status=Application.SHORTLISTED).count()

    def test_in_processes_too_the_naive_version_overbooks_and_tally_does_not(self) -> None:
        naive_outcomes = [self.run_applicants_in_processes(naive.shortlist, 6) for _ in range(TRIES // 2)]
        print(f"\nnaive, in processes: shortlisted {naive_outcomes} (two slots)")
        self.assertTrue(any(shortlisted > 2 for shortlisted in naive_outcomes))
        for _ in range(TRIES // 2):
            self.assertEqual(self.run_applicants_in_processes(services.shortlist, 6), 2)

    def test_the_naive_version_overbooks_under_concurrency(self) -> None:
        outcomes = [self.run_applicants(naive.shortlist, 6) for _ in range(TRIES)]
        broke = sum(1 for shortlisted in outcomes if shortlisted > 2)
        print(f"\nnaive: overbooked {broke} of {TRIES} times (shortlisted: {outcomes})")
        self.assertGreater(broke, 0, "the check-then-write race should have shown at least once")

    def test_with_tally_exactly_two_are_shortlisted_every_time(self) -> None:
        for applicants in (6, 100):
            for _ in range(TRIES if applicants == 6 else 3):
                self.assertEqual(self.run_applicants(services.shortlist, applicants), 2)
        self.assertFalse(Outbox.objects.exists(), "every hold was posted once its transaction committed")

    def test_a_shortlisting_rolled_back_frees_its_slot_when_its_hold_expires(self) -> None:
        job = Job.objects.create(title="Analyst", slots=1)
        services.open_job(job)
        first, second = (Application.objects.create(job=job, applicant=name) for name in ("dee", "eve"))
        with self.assertRaises(RuntimeError), transaction.atomic():
            services.shortlist(first, hold_timeout=0.3)
            raise RuntimeError("the view failed after taking the slot")
        self.assertEqual(Application.objects.get(pk=first.pk).status, Application.APPLIED)
        deadline = time.monotonic() + 10
        while (client().account(services.slots_account(job)) or self.fail()).credits_pending:
            self.assertLess(time.monotonic(), deadline, "the rolled-back shortlisting's hold expires")
            time.sleep(0.05)
        self.assertTrue(services.shortlist(second), "the slot it held is free again")
        with self.assertRaises(HoldNotPending):
            services.shortlist(first, hold_timeout=0.3)  # its retry finds its hold expired, and says so

    def test_a_rejection_takes_no_slot(self) -> None:
        job = Job.objects.create(title="Designer", slots=2)
        services.open_job(job)
        first, second, third = (Application.objects.create(job=job, applicant=name) for name in ("ann", "bo", "cy"))
        services.reject(first)
        self.assertTrue(services.shortlist(second))
        self.assertTrue(services.shortlist(third))
        self.assertFalse(services.shortlist(first), "two slots, two shortlisted")
        slots = client().account(services.slots_account(job))
        self.assertIsNotNone(slots)
        assert slots is not None
        self.assertEqual(slots.balance, Decimal(2))
        self.assertEqual(slots.credits_pending, Decimal(0))
