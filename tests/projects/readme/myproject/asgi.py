import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
from deploykit.routing import build_application
application = build_application()
