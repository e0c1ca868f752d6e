"""The example project: the four stories Tally was built from, each a Django app with its
naive version and its Tally version. The database is PostgreSQL (``runtests.py`` starts a
private cluster; ``TALLY_DEMO_DB_*`` point elsewhere), the ledger ``TALLY_URL``."""

import os

SECRET_KEY = "example-project-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "tally_ledger.django",
    "jobs",
    "wallets",
    "genomes",
    "poker",
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
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
