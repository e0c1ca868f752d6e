from django.apps import AppConfig


class PokerConfig(AppConfig):
    name = "poker"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tally_ledger.django.signals import journal_entry

        from .history import record

        journal_entry.connect(record, dispatch_uid="poker.history")
