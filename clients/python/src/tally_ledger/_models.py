"""What the ledger answers, as typed values. Every amount is a ``Decimal``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ._amounts import from_wire, required

SUCCESSES = frozenset({"created", "exists", "updated"})


@dataclass(frozen=True)
class Leg:
    """One leg of an allocation: the transfer ``<id>/<n>``."""

    id: str
    credit: str
    amount: Decimal


@dataclass(frozen=True)
class Result:
    """What the ledger decided for one event. ``seq`` is its journal position (for ``exists``,
    the original one; ``None`` when nothing was recorded) and ``timestamp`` its time in
    nanoseconds since the Unix epoch."""

    id: str
    result: str
    seq: int | None
    timestamp: int | None
    amount: Decimal | None = None
    legs: tuple[Leg, ...] = ()

    @property
    def ok(self) -> bool:
        return self.result in SUCCESSES

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Result:
        legs = tuple(Leg(leg["id"], leg["credit"], required(leg["amount"])) for leg in data.get("legs") or ())
        return cls(
            data["id"], data["result"], data.get("seq"), data.get("timestamp"), from_wire(data.get("amount")), legs
        )


@dataclass(frozen=True)
class Account:
    """An account now, or as it was at a journal position (``as_of``). For an account with
    children, every balance covers its whole subtree."""

    id: str
    asset: str
    parent: str | None
    min_balance: Decimal | None
    max_balance: Decimal | None
    metadata: dict[str, Any] | None
    closed: bool
    debits_posted: Decimal
    credits_posted: Decimal
    debits_pending: Decimal
    credits_pending: Decimal
    balance: Decimal
    available: Decimal
    version: int
    created_seq: int
    timestamp: int
    as_of: int | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Account:
        return cls(
            id=data["id"],
            asset=data["asset"],
            parent=data.get("parent"),
            min_balance=from_wire(data.get("min_balance")),
            max_balance=from_wire(data.get("max_balance")),
            metadata=data.get("metadata"),
            closed=data["closed"],
            debits_posted=required(data["debits_posted"]),
            credits_posted=required(data["credits_posted"]),
            debits_pending=required(data["debits_pending"]),
            credits_pending=required(data["credits_pending"]),
            balance=required(data["balance"]),
            available=required(data["available"]),
            version=data["version"],
            created_seq=data["created_seq"],
            timestamp=data["timestamp"],
            as_of=data.get("as_of"),
        )


@dataclass(frozen=True)
class Transfer:
    """A transfer as it stands: ``state`` is ``posted``, ``pending``, ``voided``, ``expired`` or
    ``failed``; for a hold, ``expires_at`` and ``resolved_by`` say what became of it."""

    id: str
    result: str
    state: str
    seq: int
    timestamp: int
    debit: str | None = None
    credit: str | None = None
    amount: Decimal | None = None
    asset: str | None = None
    pending: bool = False
    post: str | None = None
    void: str | None = None
    expires_at: int | None = None
    resolved_by: str | None = None
    metadata: dict[str, Any] | None = None
    key: str | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Transfer:
        return cls(
            id=data["id"],
            result=data["result"],
            state=data["state"],
            seq=data["seq"],
            timestamp=data["timestamp"],
            debit=data.get("debit"),
            credit=data.get("credit"),
            amount=from_wire(data.get("amount")),
            asset=data.get("asset"),
            pending=bool(data.get("pending", False)),
            post=data.get("post"),
            void=data.get("void"),
            expires_at=data.get("expires_at"),
            resolved_by=data.get("resolved_by"),
            metadata=data.get("metadata"),
            key=data.get("key"),
        )


@dataclass(frozen=True)
class JournalEntry:
    """One committed journal entry: ``type`` is ``asset_created``, ``account_created``,
    ``account_updated``, ``transfer``, ``hold_expired`` or ``hold_renewed``; ``data`` holds
    every field as sent (amounts as decimal strings)."""

    type: str
    seq: int
    timestamp: int
    data: Mapping[str, Any] = field(repr=False)

    @property
    def transfer(self) -> Transfer | None:
        """The transfer, for a ``transfer`` entry."""
        return Transfer.parse(self.data) if self.type == "transfer" else None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> JournalEntry:
        return cls(data["type"], data["seq"], data["timestamp"], data)


@dataclass(frozen=True)
class Health:
    status: str
    engine: str
    last_seq: int
    durable_seq: int
    queue_depth: int

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Health:
        return cls(data["status"], data["engine"], data["last_seq"], data["durable_seq"], data["queue_depth"])
