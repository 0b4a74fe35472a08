"""The WSGI side's application when the project sets no ``WSGI_APPLICATION`` (split serving, issue 15).

Django's own handler, as ``runserver`` serves it then (``get_internal_wsgi_application``):
projects written for ASGI often have no ``wsgi.py``, and their pages are served all the same.
DJANGO_SETTINGS_MODULE comes from the environment (the env file, runasgi).
"""

from __future__ import annotations

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
