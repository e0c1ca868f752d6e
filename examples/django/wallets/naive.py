"""The exchange's withdrawal as the story wrote it: read the balance, check it, call the bank,
subtract. Two withdrawals read the same balance, both pass the check, both are paid: the
wallet goes negative (and one subtraction overwrites the other, so the books do not even show
it). Locking the row fixes that race but holds a row lock across a slow bank call, and locks
taken in different orders by transfers between wallets deadlock."""

from decimal import Decimal

from .bank import FakeBank
from .models import Wallet, Withdrawal


def withdraw(withdrawal: Withdrawal, bank: FakeBank) -> bool:
    wallet = Wallet.objects.get(pk=withdrawal.wallet_id)
    if wallet.balance < withdrawal.amount:
        return False
    bank.send(f"withdrawal-{withdrawal.pk}", Decimal(withdrawal.amount))
    wallet.balance -= withdrawal.amount
    wallet.save(update_fields=["balance"])
    withdrawal.status = Withdrawal.SENT
    withdrawal.save(update_fields=["status"])
    return True
