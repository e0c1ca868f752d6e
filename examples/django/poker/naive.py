"""Chips as the story kept them: floats, pots split with ``round()``, payouts that a retry
applies again. A pot of 10.00 split three ways pays 3.33 three times and a cent vanishes; float
sums drift; a payout retried after a timeout is paid twice."""

from .models import Player


def buy_in(player: Player, amount: float) -> None:
    player.chips += amount
    player.save(update_fields=["chips"])


def bet(player: Player, amount: float) -> float:
    player.chips -= amount
    player.save(update_fields=["chips"])
    return amount


def split_pot(pot: float, winners: list[Player]) -> None:
    share = round(pot / len(winners), 2)
    for winner in winners:
        winner.chips += share
        winner.save(update_fields=["chips"])


def pay_out(player: Player, amount: float) -> None:
    """Called again when the first call timed out: nothing tells the two calls apart."""
    player.chips -= amount
    player.save(update_fields=["chips"])
