"""testproject.production with CHANNEL_LAYERS from the environment: the broadcast measurement only.

BENCH_CHANNEL_LAYERS holds the layer as JSON (deploykit's recommended config or
channels_redis's defaults); everything else is the deployed settings, unchanged.
"""

from __future__ import annotations

import json
import os

from testproject.production import *  # noqa: F403

if os.environ.get("BENCH_CHANNEL_LAYERS"):
    CHANNEL_LAYERS = json.loads(os.environ["BENCH_CHANNEL_LAYERS"])
