"""``manage.py shell -c`` body: a signed-in session for the realistic page (/account/), printed as a Cookie.

The benchmark migrates the stacks' shared SQLite database, creates a user and
some others (the page lists the newest ten), and sends this cookie with wrk.
"""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model

User = get_user_model()
user, _ = User.objects.get_or_create(username="bench")
user.set_password("bench-password")
user.save()
for i in range(20):
    User.objects.get_or_create(username=f"member{i}")
session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.save()
print(f"COOKIE {settings.SESSION_COOKIE_NAME}={session.session_key}")
