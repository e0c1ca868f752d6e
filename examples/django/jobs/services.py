"""The job board on Tally: a job's slots are an account whose ``max_balance`` is the number of
slots. Shortlisting moves one slot into it: the ledger checks the bound and moves the slot in
one step, so no two requests can both take the last one. Rejecting takes no slot."""

from django.db import transaction
from tally_ledger import LimitExceeded
from tally_ledger.django import client, hold_on_commit, idempotency_key, ledger_id

from .models import Application, Job

ASSET = "SLOT"
APPLICANTS = "jobs:applicants"


def slots_account(job: Job) -> str:
    return ledger_id(f"jobs:{job.pk}:slots")


def open_job(job: Job) -> None:
    """The job's slots account (made again harmlessly: ``exists``)."""
    tally = client()
    tally.create_asset(ledger_id(ASSET), 0)
    tally.create_account(ledger_id(APPLICANTS), ledger_id(ASSET), min_balance=None)
    tally.create_account(slots_account(job), ledger_id(ASSET), max_balance=job.slots)


#: How long a shortlisting's hold lasts if its transaction never commits: well beyond a
#: transaction's time and the outbox drain's interval (a minute), so a committed one is always
#: posted first.
HOLD_TIMEOUT = 600.0


def shortlist(application: Application, *, hold_timeout: float = HOLD_TIMEOUT) -> bool:
    """Takes a slot for the application, or says there is none left. The slot is held while
    the transaction runs and posted when it commits; a rollback leaves the hold to expire. The
    key names this application's shortlisting, so the answer is decided once: a refusal (no
    slot) stays a refusal when the request is retried. Trying again later, when a slot may have
    freed up, is a new decision and needs a new key (``idempotency_key(application,
    "shortlist", attempt)``)."""
    with transaction.atomic():
        try:
            hold_on_commit(
                idempotency_key(application, "shortlist"),
                ledger_id(APPLICANTS),
                slots_account(application.job),
                1,
                timeout=hold_timeout,
            )
        except LimitExceeded:
            return False
        application.status = Application.SHORTLISTED
        application.save(update_fields=["status"])
    return True


def reject(application: Application) -> None:
    """A rejection takes no slot: nothing moves in the ledger."""
    application.status = Application.REJECTED
    application.save(update_fields=["status"])
