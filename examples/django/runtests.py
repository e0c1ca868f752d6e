"""Runs the example project's tests against a real PostgreSQL (a private cluster) and a real
``tally serve`` (``TALLY_BIN``, or built from the checkout), then stops both.

    python examples/django/runtests.py [test labels]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgcluster import Cluster


def main() -> int:
    from tally_ledger.testing import TallyServer

    cluster = Cluster()
    try:
        with TallyServer() as ledger:
            os.environ["TALLY_DEMO_DB_HOST"] = str(cluster.directory)
            os.environ["TALLY_DEMO_DB_PORT"] = str(cluster.port)
            os.environ["TALLY_URL"] = ledger.url
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tallydemo.settings")
            import django
            from django.conf import settings
            from django.test.utils import get_runner

            django.setup()
            runner = get_runner(settings)(verbosity=1, interactive=False)
            failures = runner.run_tests(sys.argv[1:] or ["tallydemo", "jobs", "wallets", "genomes", "poker"])
            return 1 if failures else 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
