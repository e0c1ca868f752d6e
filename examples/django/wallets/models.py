from decimal import Decimal

from django.db import models


class Wallet(models.Model):
    owner = models.CharField(max_length=200)
    #: The naive version's balance, kept in the app's own table.
    balance = models.DecimalField(max_digits=20, decimal_places=2, default=Decimal("0"))


class Withdrawal(models.Model):
    PENDING, SENT, FAILED, REVIEW = "pending", "sent", "failed", "review"

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="withdrawals")
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    status = models.CharField(max_length=20, default=PENDING)
