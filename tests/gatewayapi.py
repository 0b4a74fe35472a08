"""Gateway API documents checked against Gateway API's schema (kubernetes-validate knows no CRDs).

The schema comes from an installable package: npm's ``@kubernetes-models/gateway-api`` (its
validators are compiled from the ``sigs.k8s.io/gateway-api/apis/v1`` types), installed by
``tests/setup.sh`` into ``.tools/gateway-api``. It checks types, required fields, enums,
patterns (durations, header names) and list sizes; not the CRD's CEL rules, and it does not
refuse unknown fields (the API server's strict field validation would), so the tests also
compare the keys written with the spec's.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.conftest import TOOLS, missing_tool, require_tool

GROUP = "gateway.networking.k8s.io"
MODULES = TOOLS / "gateway-api" / "node_modules"
SCRIPT = Path(__file__).with_name("gatewayapi_validate.mjs")


def gateway_documents(text: str) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(text) if d and str(d.get("apiVersion", "")).startswith(f"{GROUP}/")]


def validate_gateway_api(text: str) -> int:
    """Validate every Gateway API document in the YAML ``text``; how many there were. AssertionError names the fault."""
    docs = gateway_documents(text)
    node = require_tool("node")
    if not (MODULES / "@kubernetes-models" / "gateway-api").is_dir():
        missing_tool(f"@kubernetes-models/gateway-api is not installed in {MODULES} (bash tests/setup.sh)")
    done = subprocess.run(
        [node, str(SCRIPT), str(MODULES)], input=json.dumps(docs), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr or done.stdout
    return len(docs)
