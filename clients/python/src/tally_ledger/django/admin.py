"""A read-only view of a model's Tally account in the Django admin.

    @admin.register(Wallet)
    class WalletAdmin(TallyAccountAdminMixin, admin.ModelAdmin):
        def tally_account(self, obj):
            return wallet_account(obj)

The change page shows the account's balances (``?as_of=<seq>`` in the URL shows them as they
were right after that journal position), its open holds (among its last 1,000 transfers) and
its 20 most recent transfers.
"""

from __future__ import annotations

import contextvars
from collections import deque
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join

from .._models import Transfer
from . import client

#: How many of the account's transfers the change page lists, newest first.
RECENT_TRANSFERS = 20
#: The most recent transfers looked through for open holds: the API lists an account's
#: transfers in seq order only, so the page reads a bounded window at the end of the journal.
HOLDS_SCANNED = 1000

_as_of: contextvars.ContextVar[int | None] = contextvars.ContextVar("tally_as_of", default=None)


def latest_transfers(account: str, count: int) -> list[Transfer]:
    """The account's last ``count`` transfers, oldest first, read from windows at the end of the
    journal that widen tenfold until they hold enough (each read is bounded)."""
    tally = client()
    durable, window = tally.health().durable_seq, 1000
    while True:
        start = max(0, durable - window)
        found: deque[Transfer] = deque(maxlen=count)
        found.extend(tally.account_transfers(account, after_seq=start))
        if len(found) >= count or start == 0:
            return list(found)
        window *= 10


class TallyAccountAdminMixin:
    tally_fields = ("tally_balance", "tally_open_holds", "tally_recent_transfers")

    def tally_account(self, obj: Any) -> str:
        """The id of ``obj``'s account in the ledger."""
        raise NotImplementedError("say which account: override tally_account(obj)")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        return fields + self.tally_fields if obj is not None else fields

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        text = request.GET.get("as_of", "")
        token = _as_of.set(int(text) if text.isdigit() else None)
        try:
            response: HttpResponse = super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
            if hasattr(response, "render"):
                response.render()
            return response
        finally:
            _as_of.reset(token)

    def tally_balance(self, obj: Any) -> Any:
        as_of = _as_of.get()
        account = client().account(self.tally_account(obj), as_of=as_of)
        if account is None:
            return "no such account" if as_of is None else f"not yet made at seq {as_of}"
        when = f"as of seq {as_of}" if as_of is not None else "now"
        return format_html(
            "{} {}: balance {}, available {} (posted {} in, {} out; pending {} in, {} out), version {}{}",
            account.asset,
            when,
            account.balance,
            account.available,
            account.credits_posted,
            account.debits_posted,
            account.credits_pending,
            account.debits_pending,
            account.version,
            ", closed" if account.closed else "",
        )

    def tally_open_holds(self, obj: Any) -> Any:
        holds = [t for t in latest_transfers(self.tally_account(obj), HOLDS_SCANNED) if t.state == "pending"]
        if not holds:
            return "none"
        return format_html_join(
            ", ", "{} ({}, expires at {})", ((t.id, t.amount, t.expires_at or "never") for t in holds)
        )

    def tally_recent_transfers(self, obj: Any) -> Any:
        transfers = latest_transfers(self.tally_account(obj), RECENT_TRANSFERS)[::-1]
        if not transfers:
            return "none"
        rows = ((t.seq, t.id, t.debit or "", t.credit or "", t.amount or "", t.state) for t in transfers)
        return format_html_join(", ", "#{} {}: {} → {} {} ({})", rows)

    tally_balance.short_description = "Tally balance"  # type: ignore[attr-defined]
    tally_open_holds.short_description = "Open holds"  # type: ignore[attr-defined]
    tally_recent_transfers.short_description = "Recent transfers"  # type: ignore[attr-defined]
