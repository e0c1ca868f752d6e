"""The example project: the four stories Tally was built from, each a Django app with its
naive version and its Tally version. The database is PostgreSQL (``runtests.py`` starts a
private cluster; ``TALLY_DEMO_DB_*`` point elsewhere), the ledger ``TALLY_URL``."""

import os

SECRET_KEY = "example-project-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "tally_ledger.django",
    "jobs",
    "wallets",
    "genomes",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("TALLY_DEMO_DB_NAME", "postgres"),
        "USER": os.environ.get("TALLY_DEMO_DB_USER", "tally"),
        "HOST": os.environ.get("TALLY_DEMO_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("TALLY_DEMO_DB_PORT", "5432"),
    }
}
TALLY = {"URL": os.environ.get("TALLY_URL"), "API_KEY": os.environ.get("TALLY_API_KEY")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "tallydemo.urls"
