"""The plugin's ``tally_django`` fixture points the Django integration at the test's server, under
the test's prefix. (The Django example project tests the integration itself.)"""

from __future__ import annotations

from django.conf import settings

from tally_ledger.testing import TallyServer

if not settings.configured:
    settings.configure(INSTALLED_APPS=[], TALLY={"URL": "http://127.0.0.1:9"})


def test_the_integration_talks_to_the_test_server_under_the_test_prefix(
    tally_django: str, tally_server: TallyServer
) -> None:
    from tally_ledger.django import client, ledger_id

    assert client().url == tally_server.url
    assert ledger_id("alice") == f"{tally_django}alice"
    assert client().create_asset(ledger_id("USD"), 2).result == "created"


def test_each_test_gets_its_own_prefix(tally_django: str) -> None:
    from tally_ledger.django import client, ledger_id

    assert client().create_asset(ledger_id("USD"), 2).result == "created", "not the other test's asset"
