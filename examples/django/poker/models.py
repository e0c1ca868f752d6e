from django.db import models


class Table(models.Model):
    name = models.CharField(max_length=200)


class Player(models.Model):
    table = models.ForeignKey(Table, on_delete=models.CASCADE, related_name="players")
    name = models.CharField(max_length=200)
    #: The naive version's chips, as the story kept them: a float.
    chips = models.FloatField(default=0.0)


class Hand(models.Model):
    table = models.ForeignKey(Table, on_delete=models.CASCADE, related_name="hands")
    number = models.PositiveIntegerField()
    #: What the pot holds once betting closed: the amount split, the same on every retry.
    pot = models.DecimalField(max_digits=20, decimal_places=2, null=True)


class HandEvent(models.Model):
    """The hand history, rebuilt from the ledger's journal by ``manage.py tally_follow``: one
    row per journal entry that moved chips at a table, keyed by its seq (so an entry delivered
    twice is stored once)."""

    seq = models.BigIntegerField(unique=True)
    transfer = models.CharField(max_length=128)
    debit = models.CharField(max_length=128)
    credit = models.CharField(max_length=128)
    amount = models.DecimalField(max_digits=20, decimal_places=2)
