"""JSON as the ledger speaks it: numbers are never read into floats.

Amounts travel as decimal strings, but metadata may hold numbers, and Tally keeps them exactly
as written (``0.10000000000000000000001`` comes back as sent, and ``1.0``, ``1e0`` and ``1`` are
three different values). Reading them as floats would lose that, so a number with a fraction or
an exponent is read as a ``Number``: a ``Decimal`` that remembers its text and is written back
as it came.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any


class Number(Decimal):
    """A JSON number as the ledger sent it: a ``Decimal`` whose text is kept, so sending it back
    sends the same metadata."""

    text: str

    def __new__(cls, text: str) -> Number:
        number = super().__new__(cls, text)
        number.text = text
        return number


def loads(data: bytes) -> Any:
    return json.loads(data, parse_float=Number)


def _encode(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool):
        out.append({None: "null", True: "true", False: "false"}[value])
    elif isinstance(value, str):
        out.append(json.dumps(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Number):
        out.append(value.text)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        out.append(str(value))
    elif isinstance(value, float):
        # A float in metadata is written as the shortest text that reads back as it.
        out.append(json.dumps(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys are strings, not {type(key).__name__}")
            out.append("," if index else "")
            out.append(json.dumps(key))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, Sequence):
        out.append("[")
        for index, item in enumerate(value):
            out.append("," if index else "")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(value: Any) -> bytes:
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode()
