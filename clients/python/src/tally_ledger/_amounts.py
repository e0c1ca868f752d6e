"""Amounts in and out: ``Decimal``, ``int`` or a decimal string in, ``Decimal`` out, never a float.

A float cannot hold most cents exactly (``0.1 + 0.2 != 0.3``), so one is refused before any
request is made. Nothing is ever rounded: an amount with more decimals than its asset's scale
is refused by the ledger (``invalid_amount``) and raised as ``InvalidAmount``, a ``ValueError``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TypeAlias

Amount: TypeAlias = "Decimal | int | str"

_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def to_wire(value: Amount, field: str) -> str:
    """The decimal string the API takes for ``value``."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        kind = type(value).__name__
        hint = " (a float cannot hold most decimal fractions exactly)" if isinstance(value, float) else ""
        raise TypeError(f"{field}: an amount is a Decimal, an int or a decimal string, not a {kind}{hint}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise ValueError(f"{field}: {value!r} is not a decimal number such as '12.30'")
        return value
    if not value.is_finite():
        raise ValueError(f"{field}: {value} is not a finite amount")
    return format(value, "f")


def from_wire(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation as error:  # the server only sends decimal strings
        raise ValueError(f"the server sent {text!r} as an amount") from error


def required(text: str) -> Decimal:
    amount = from_wire(text)
    assert amount is not None
    return amount
