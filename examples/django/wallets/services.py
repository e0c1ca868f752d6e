"""Withdrawals on Tally: a hold before the bank call (the check and the reservation are one
step, so no race can overdraw), posted when the bank pays, voided when it declines, and left to
expire if the worker dies in between. Every id comes from the withdrawal's row, so a retried
task places no second hold, and the bank's reference is the same, so it pays once."""

from __future__ import annotations

import contextlib
from decimal import Decimal

from tally_ledger import HoldNotPending, InsufficientFunds
from tally_ledger.django import client, idempotency_key, ledger_id

from .bank import BankError, FakeBank
from .models import Wallet, Withdrawal

ASSET = "USD"
#: Money on its way to banks: the other side of every withdrawal.
OUTGOING = "bank:outgoing"
#: Where deposits come from.
WORLD = "world"
#: Longer than the bank may take: past it, a hold the worker never resolved releases the money.
HOLD_TIMEOUT = 30.0


def wallet_account(wallet: Wallet) -> str:
    return ledger_id(f"wallets:{wallet.pk}")


def open_wallet(wallet: Wallet, deposit: Decimal) -> None:
    tally = client()
    tally.create_asset(ledger_id(ASSET), 2)
    tally.create_account(ledger_id(WORLD), ledger_id(ASSET), min_balance=None)
    tally.create_account(ledger_id(OUTGOING), ledger_id(ASSET))
    tally.create_account(wallet_account(wallet), ledger_id(ASSET))
    tally.transfer(idempotency_key(wallet, "deposit"), ledger_id(WORLD), wallet_account(wallet), deposit)


def withdraw(withdrawal: Withdrawal, bank: FakeBank, *, hold_timeout: float = HOLD_TIMEOUT) -> bool:
    """Pays a withdrawal out, or refuses it for want of funds, or records the bank's refusal.
    Safe to run again for the same withdrawal, even while another run is under way: the hold's
    id and the bank's reference are the withdrawal's, so it is held once and paid once."""
    tally = client()
    reference = f"withdrawal-{withdrawal.pk}"
    try:
        hold = tally.hold(
            idempotency_key(withdrawal, "hold"),
            wallet_account(withdrawal.wallet),
            ledger_id(OUTGOING),
            withdrawal.amount,
            timeout=hold_timeout,
        )
    except InsufficientFunds:
        return finish(withdrawal, Withdrawal.FAILED)
    if hold.placed is not None and hold.placed.result == "exists":
        # A retry: an earlier run placed the hold and may have gone further.
        decided = already_decided(withdrawal, hold.id, bank.paid_for(reference))
        if decided is not None:
            return decided
    try:
        bank.send(reference, Decimal(withdrawal.amount))
    except BankError:
        if bank.paid_for(reference) is None:  # another run may have been paid meanwhile
            with contextlib.suppress(HoldNotPending):
                hold.void()
            return already_decided(withdrawal, hold.id, None) or False
    try:
        hold.post()
    except HoldNotPending:
        # Voided by a run the bank declined, or expired while the bank was slow: it paid all
        # the same, so the money must leave the wallet now.
        return already_decided(withdrawal, hold.id, bank.paid_for(reference)) or False
    return finish(withdrawal, Withdrawal.SENT)


def already_decided(withdrawal: Withdrawal, hold_id: str, paid: Decimal | None) -> bool | None:
    """What the hold says was decided: posted (paid); released while the bank did not pay
    (declined); released although the bank paid (debited now, late: or, if the money was spent
    meanwhile, left for a person to review); still pending (``None``: go on; the bank's
    reference makes sending again safe)."""
    tally = client()
    hold = tally.get_transfer(hold_id)
    state = hold.state if hold is not None else "failed"
    if state == "posted":
        return finish(withdrawal, Withdrawal.SENT)
    if state == "pending":
        return None
    if paid is None:
        return finish(withdrawal, Withdrawal.FAILED)
    try:
        tally.transfer(
            idempotency_key(withdrawal, "late-debit"), wallet_account(withdrawal.wallet), ledger_id(OUTGOING), paid
        )
    except InsufficientFunds:
        return finish(withdrawal, Withdrawal.REVIEW)
    return finish(withdrawal, Withdrawal.SENT)


def finish(withdrawal: Withdrawal, status: str) -> bool:
    withdrawal.status = status
    withdrawal.save(update_fields=["status"])
    return status == Withdrawal.SENT
