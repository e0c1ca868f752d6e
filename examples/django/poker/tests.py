"""A table of three playing hands: the naive version loses cents to floats and round() and pays
a retried payout twice; the Tally version splits every pot to the cent, pays once, and its hand
history, rebuilt from the journal, accounts for every chip."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from django.core.management import call_command
from django.test import TransactionTestCase
from tally_ledger.django import client, ledger_id
from tally_ledger.django.models import JournalCursor
from tally_ledger.django.testing import TallyTestMixin

from . import naive, services
from .models import Hand, HandEvent, Player, Table

HANDS = 30
POTS = ["10.00", "0.10", "1.01", "7.77", "100.00", "0.03"]


class Chips(TallyTestMixin, TransactionTestCase):
    def seat(self) -> tuple[Table, list[Player]]:
        table = Table.objects.create(name="high stakes")
        return table, [Player.objects.create(table=table, name=name) for name in ("ann", "bo", "cy")]

    def test_the_naive_version_loses_cents_and_pays_twice(self) -> None:
        _, players = self.seat()
        for player in players:
            naive.buy_in(player, 500.10)
        for number in range(HANDS):
            stake = float(POTS[number % len(POTS)]) / 3
            pot = sum(naive.bet(player, stake) for player in players)
            naive.split_pot(pot, players)
        total = sum(Player.objects.get(pk=player.pk).chips for player in players)
        print(f"\nnaive: 1500.30 bought in, {total!r} on the table after {HANDS} three-way splits")
        self.assertNotEqual(total, 1500.30, "floats and round() should have lost or made cents")
        naive.pay_out(players[0], 100.0)
        naive.pay_out(players[0], 100.0)  # the retry after a timeout
        self.assertAlmostEqual(Player.objects.get(pk=players[0].pk).chips, total / 3 - 200.0, delta=1.0)

    def test_with_tally_every_cent_is_kept_and_every_payout_paid_once(self) -> None:
        table, players = self.seat()
        services.open_table(table, players)
        for player in players:
            services.buy_in(player, Decimal("500.10"), 1)
            services.buy_in(player, Decimal("500.10"), 1)  # retried: the same id, bought once
        for number in range(HANDS):
            hand = Hand.objects.create(table=table, number=number)
            services.deal(hand)
            pot = Decimal(POTS[number % len(POTS)])
            share = (pot / 3).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
            bets = [share, share, pot - 2 * share]
            for player, amount in zip(players, bets, strict=True):
                services.bet(hand, player, amount, 1)
            services.split_pot(hand, players)
            services.split_pot(hand, players)  # retried: paid once
        balances = [(client().account(services.player_account(player)) or self.fail()).balance for player in players]
        self.assertEqual(sum(balances), Decimal("1500.30"), "not a cent lost or made")
        paid = services.cash_out(players[0], 1)
        self.assertEqual(paid, balances[0])
        self.assertEqual(services.cash_out(players[0], 1), paid, "the retried cash-out is the same payout")
        cashier_then = client().account(ledger_id(services.CASHIER))
        assert cashier_then is not None

        # The hand history, rebuilt from the journal, accounts for every chip.
        call_command("tally_follow", "--once", "--name", "poker")
        events = list(HandEvent.objects.all())
        for player, balance in zip(players, balances, strict=True):
            account = services.player_account(player)
            received = sum((e.amount for e in events if e.credit == account), Decimal(0))
            spent = sum((e.amount for e in events if e.debit == account), Decimal(0))
            self.assertEqual(received - spent, Decimal(0) if player == players[0] else balance, player.name)
        # Followed again from the start (as after a crash before the cursor was saved): stored once.
        count = HandEvent.objects.count()
        JournalCursor.objects.filter(name="poker").update(seq=0)
        call_command("tally_follow", "--once", "--name", "poker")
        self.assertEqual(HandEvent.objects.count(), count)
