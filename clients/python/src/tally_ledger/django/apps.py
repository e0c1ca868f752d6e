from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks


class TallyConfig(AppConfig):
    name = "tally_ledger.django"
    label = "tally"
    verbose_name = "Tally"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        checks.register(ledger_answers, checks.Tags.compatibility)


def ledger_answers(app_configs: Any = None, **_: Any) -> list[checks.CheckMessage]:
    """``manage.py check``: the ledger in ``settings.TALLY`` answers, and is healthy."""
    from .._errors import TallyError
    from . import client

    try:
        health = client().health()
    except (TallyError, ValueError) as error:
        return [checks.Warning(f"the Tally ledger does not answer: {error}", id="tally.W001")]
    if health.status != "ok":
        return [checks.Warning(f"the Tally ledger is {health.status}", id="tally.W002")]
    return []
