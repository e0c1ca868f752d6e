"""Concurrent withdrawals from one wallet through a slow, flaky bank: the naive version pays out
more than the wallet holds; the Tally version never overdraws, never pays twice, and loses
nothing when the bank fails or the worker dies."""

from __future__ import annotations

import time
from decimal import Decimal

from django.test import TransactionTestCase
from tally_ledger.django import client
from tally_ledger.django.testing import TallyTestMixin
from tallydemo.concurrency import concurrently

from . import naive, services
from .bank import FakeBank
from .models import Wallet, Withdrawal

TRIES = 10


class Withdrawals(TallyTestMixin, TransactionTestCase):
    def wallet(self, deposit: str) -> Wallet:
        wallet = Wallet.objects.create(owner="alice", balance=Decimal(deposit))
        services.open_wallet(wallet, Decimal(deposit))
        return wallet

    def test_the_naive_version_pays_out_more_than_the_wallet_holds(self) -> None:
        overpaid = 0
        for _ in range(TRIES):
            wallet, bank = self.wallet("100.00"), FakeBank()
            withdrawals = [Withdrawal.objects.create(wallet=wallet, amount=Decimal("60.00")) for _ in range(8)]
            concurrently(lambda w, bank=bank: naive.withdraw(w, bank), withdrawals)
            overpaid += bank.total > Decimal("100.00")
        print(f"\nnaive: paid out more than the balance {overpaid} of {TRIES} times")
        self.assertGreater(overpaid, 0)

    def test_with_tally_no_overdraft_no_double_payment_nothing_lost(self) -> None:
        for _ in range(TRIES):
            wallet, bank = self.wallet("100.00"), FakeBank(failure_rate=0.3)
            withdrawals = [Withdrawal.objects.create(wallet=wallet, amount=Decimal("30.00")) for _ in range(8)]
            # Every withdrawal run twice at once (a task delivered twice), then once more.
            concurrently(lambda w, bank=bank: services.withdraw(w, bank), withdrawals + withdrawals)
            again = list(Withdrawal.objects.filter(wallet=wallet))
            concurrently(lambda w, bank=bank: services.withdraw(w, bank), again)
            account = client().account(services.wallet_account(wallet))
            assert account is not None
            self.assertGreaterEqual(account.balance, 0)
            self.assertEqual(account.debits_pending, 0, "every hold posted or voided")
            self.assertEqual(
                account.balance, Decimal("100.00") - bank.total, "the ledger and the bank agree to the cent"
            )
            sent = sum((w.amount for w in Withdrawal.objects.filter(wallet=wallet, status=Withdrawal.SENT)), Decimal(0))
            self.assertEqual(sent, bank.total)

    def test_a_retry_after_the_worker_died_once_the_bank_had_paid_pays_once(self) -> None:
        wallet, bank = self.wallet("100.00"), FakeBank()
        withdrawal = Withdrawal.objects.create(wallet=wallet, amount=Decimal("70.00"))

        class PaysThenDies(FakeBank):
            def send(self, reference: str, amount: Decimal) -> None:
                bank.send(reference, amount)
                raise SystemExit("the worker was killed after the bank paid")

        with self.assertRaises(SystemExit):
            services.withdraw(withdrawal, PaysThenDies())
        self.assertTrue(
            services.withdraw(Withdrawal.objects.get(pk=withdrawal.pk), bank), "the retry finds the hold pending"
        )
        account = client().account(services.wallet_account(wallet))
        assert account is not None
        self.assertEqual((account.balance, account.debits_pending, bank.total), (Decimal("30.00"), 0, Decimal("70.00")))

    def test_a_hold_that_expired_while_the_bank_paid_is_debited_late(self) -> None:
        wallet, bank = self.wallet("100.00"), FakeBank(delay=0.5)
        withdrawal = Withdrawal.objects.create(wallet=wallet, amount=Decimal("70.00"))
        self.assertTrue(services.withdraw(withdrawal, bank, hold_timeout=0.1), "the bank paid after the hold expired")
        account = client().account(services.wallet_account(wallet))
        assert account is not None
        self.assertEqual((account.balance, bank.total), (Decimal("30.00"), Decimal("70.00")))
        retried = services.withdraw(Withdrawal.objects.get(pk=withdrawal.pk), bank, hold_timeout=0.1)
        self.assertTrue(retried, "run again: paid and debited once")
        self.assertEqual((client().account(services.wallet_account(wallet)) or account).balance, Decimal("30.00"))

    def test_a_worker_that_dies_mid_withdrawal_releases_the_money_when_the_hold_expires(self) -> None:
        wallet = self.wallet("100.00")
        withdrawal = Withdrawal.objects.create(wallet=wallet, amount=Decimal("80.00"))

        class Dies(FakeBank):
            def send(self, reference: str, amount: Decimal) -> None:
                raise SystemExit("the worker was killed")

        with self.assertRaises(SystemExit):
            services.withdraw(withdrawal, Dies(), hold_timeout=0.2)
        held = client().account(services.wallet_account(wallet))
        assert held is not None
        self.assertEqual(held.available, Decimal("20.00"), "held while the worker might still pay")
        deadline = time.monotonic() + 10
        while (client().account(services.wallet_account(wallet)) or held).available != Decimal("100.00"):
            self.assertLess(time.monotonic(), deadline, "the hold expires")
            time.sleep(0.05)


class WalletAdminPage(TallyTestMixin, TransactionTestCase):
    def test_the_admin_shows_the_ledger_balance_now_and_as_of_a_seq_with_open_holds(self) -> None:
        from django.contrib.auth.models import User

        wallet = Wallet.objects.create(owner="alice")
        services.open_wallet(wallet, Decimal("100.00"))
        deposited = client().account(services.wallet_account(wallet))
        assert deposited is not None
        services.withdraw(Withdrawal.objects.create(wallet=wallet, amount=Decimal("30.00")), FakeBank())
        client().hold(
            f"{self.tally_prefix}pending",
            services.wallet_account(wallet),
            services.ledger_id(services.OUTGOING),
            "5.00",
            timeout=600,
        )
        User.objects.create_superuser("admin", "admin@example.com", "secret")
        self.client.login(username="admin", password="secret")
        page = self.client.get(f"/admin/wallets/wallet/{wallet.pk}/change/").content.decode()
        self.assertIn("balance 70.00, available 65.00", page)
        self.assertIn(f"{self.tally_prefix}pending (5.00", page)
        then = self.client.get(
            f"/admin/wallets/wallet/{wallet.pk}/change/?as_of={deposited.created_seq}"
        ).content.decode()
        self.assertIn(f"as of seq {deposited.created_seq}: balance 0.00", then)
