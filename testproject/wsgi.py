"""The HTTP side of split serving (DEPLOYKIT["WSGI_SERVER"]): Django's own WSGI handler."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
