"""A fake bank for the stories: slow, sometimes failing, and idempotent by reference like a
real payment API (a transfer sent twice under one reference is paid once)."""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal


class BankError(Exception):
    pass


class FakeBank:
    def __init__(self, failure_rate: float = 0.0, delay: float = 0.002, seed: int = 7) -> None:
        self.failure_rate, self.delay = failure_rate, delay
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.paid: dict[str, Decimal] = {}

    def send(self, reference: str, amount: Decimal) -> None:
        time.sleep(self.delay)
        with self.lock:
            if self.random.random() < self.failure_rate:
                raise BankError(f"{reference}: declined")
            self.paid.setdefault(reference, amount)

    def paid_for(self, reference: str) -> Decimal | None:
        """What the bank paid under ``reference`` (a real bank answers this by reference too)."""
        with self.lock:
            return self.paid.get(reference)

    @property
    def total(self) -> Decimal:
        with self.lock:
            return sum(self.paid.values(), Decimal(0))
