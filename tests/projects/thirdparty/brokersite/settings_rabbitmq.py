"""The same project on channels_rabbitmq, with the broker on another machine (an address, not a name)."""

from .settings import *  # noqa: F403
from .settings import DATABASES

# No PostgreSQL for this variant.
del DATABASES["channels_postgres"]
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "channels_postgres"]  # noqa: F405

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_rabbitmq.core.RabbitmqChannelLayer",
        "CONFIG": {"host": "amqp://guest:guest@10.1.2.3:5672/asgi"},
    },
}
