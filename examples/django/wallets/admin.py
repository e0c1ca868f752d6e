from typing import Any

from django.contrib import admin
from tally_ledger.django.admin import TallyAccountAdminMixin

from .models import Wallet
from .services import wallet_account


@admin.register(Wallet)
class WalletAdmin(TallyAccountAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("owner",)

    def tally_account(self, obj: Any) -> str:
        return wallet_account(obj)
