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


def split_pot(hand: Hand, winners: list[Player]) -> None:
    """The whole pot to the winners in equal shares, to the cent: the allocation gives the
    cents a division leaves over to the first winners, and nothing is lost. The amount is all
    that was bet into the pot, which does not change once the pot is split, so a retry sends the
    same request and is answered ``exists``."""
    tally = client()
    pot = tally.account(pot_account(hand))
    assert pot is not None
    shares = [{"credit": player_account(winner), "weight": 1} for winner in winners]
    [result] = tally.transfers(
        [
            {
                "id": idempotency_key(hand, "split"),
                "debit": pot_account(hand),
                "amount": pot.credits_posted,
                "allocate": shares,
            }
        ]
    )
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
