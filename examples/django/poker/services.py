"""Chips on Tally: exact decimals, a pot split by an allocation (largest remainder: every cent
goes to someone), payouts keyed by what they pay for (a retry is the same id: paid once), and
the hand history rebuilt from the journal."""

from __future__ import annotations

from decimal import Decimal

from tally_ledger.django import client, idempotency_key, ledger_id

from .models import Hand, Player, Table

ASSET = "CHIP"
CASHIER = "poker:cashier"


def player_account(player: Player) -> str:
    return ledger_id(f"poker:{player.table_id}:player:{player.pk}")


def pot_account(hand: Hand) -> str:
    return ledger_id(f"poker:{hand.table_id}:hand:{hand.number}:pot")


def open_table(table: Table, players: list[Player]) -> None:
    tally = client()
    tally.create_asset(ledger_id(ASSET), 2)
    tally.create_account(ledger_id(CASHIER), ledger_id(ASSET), min_balance=None)
    for player in players:
        tally.create_account(player_account(player), ledger_id(ASSET))


def buy_in(player: Player, amount: Decimal, number: int) -> None:
    client().transfer(idempotency_key(player, "buy-in", number), ledger_id(CASHIER), player_account(player), amount)


def deal(hand: Hand) -> None:
    client().create_account(pot_account(hand), ledger_id(ASSET))


def bet(hand: Hand, player: Player, amount: Decimal, number: int) -> None:
    client().transfer(
        idempotency_key(hand, "bet", player.pk, number), player_account(player), pot_account(hand), amount
    )


def close_betting(hand: Hand) -> Decimal:
    """Freezes what the pot holds (once: a retry keeps the first figure), so a split sent again
    is the same request, and a bet that comes late does not change it."""
    if hand.pot is None:
        pot = client().account(pot_account(hand))
        assert pot is not None
        Hand.objects.filter(pk=hand.pk, pot__isnull=True).update(pot=pot.balance)
        hand.refresh_from_db(fields=["pot"])
    assert hand.pot is not None
    return hand.pot


def split_pot(hand: Hand, winners: list[Player]) -> None:
    """The whole pot to the winners in equal shares, to the cent: the allocation gives the
    cents a division leaves over to the first winners, and nothing is lost."""
    amount = close_betting(hand)
    shares = [{"credit": player_account(winner), "weight": 1} for winner in winners]
    event = {"id": idempotency_key(hand, "split"), "debit": pot_account(hand), "amount": amount, "allocate": shares}
    [result] = client().transfers([event])
    if not result.ok:
        raise RuntimeError(f"the pot of hand {hand.number} was not split: {result.result}")


def cash_out(player: Player, number: int) -> Decimal:
    """Everything the player holds back to the cashier (a balancing transfer: as much as there
    is). Retried, it is the same id: paid once."""
    [result] = client().transfers(
        [
            {
                "id": idempotency_key(player, "cash-out", number),
                "debit": player_account(player),
                "credit": ledger_id(CASHIER),
                "balancing": True,
            }
        ]
    )
    return result.amount or Decimal(0)
