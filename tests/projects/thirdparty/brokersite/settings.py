"""A project whose channel layer is not Redis: channels_postgres (LISTEN/NOTIFY on the project's PostgreSQL).

Configured as its README says: CONFIG is a DATABASES-style dict naming the
database server (here another host than the app's, db.internal), and the
package's app for its message table.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "thirdparty-" + "s" * 50)
DEBUG = False
ALLOWED_HOSTS = ["chat.example.org", "127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "channels_postgres",
    "deploykit",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "brokersite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
ASGI_APPLICATION = "brokersite.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    },
}

CHANNELS_DB = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": os.environ.get("CHANNELS_DB_NAME", "channels"),
    "USER": os.environ.get("CHANNELS_DB_USER", "channels"),
    "PASSWORD": os.environ.get("CHANNELS_DB_PASSWORD", ""),
    "HOST": os.environ.get("CHANNELS_DB_HOST", "db.internal"),
    "PORT": os.environ.get("CHANNELS_DB_PORT", "5432"),
}
# channels_postgres keeps its message table in this database (migrate --database channels_postgres).
DATABASES["channels_postgres"] = CHANNELS_DB

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_postgres.core.PostgresChannelLayer",
        "CONFIG": {**CHANNELS_DB, "group_expiry": 86400},
    },
}

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "static_collected"

USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
