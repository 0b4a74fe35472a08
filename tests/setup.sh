#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 machine (as root):
# the real programs the tests run, and a virtualenv with deploykit and its extras.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
# postgresql: the release lock's e2e (tests/e2e/test_processes.py) runs a throwaway server as the postgres user.
packages=(nginx redis-server redis-sentinel supervisor apache2 caddy chromium wrk docker-compose systemd postgresql prometheus)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts the packaged services on install; the tests start their own
# instances on loopback ports and temp prefixes, so the system ones may stay.

python3 -m venv .venv
.venv/bin/pip install -q -U pip
.venv/bin/pip install -q -e '.[test,uvicorn,gunicorn,granian,hypercorn,lint,type]'
# checkov pins packaging<24, which pytest 9 cannot take: it gets a virtualenv of its own,
# where tests/conftest.py (require_tool) finds it.
python3 -m venv .tools/checkov
.tools/checkov/bin/pip install -q 'checkov>=3.3,<4'
# The Gateway API schema the Kubernetes tests check HTTPRoutes against (kubernetes-validate knows no
# CRDs): npm's @kubernetes-models/gateway-api, compiled from Gateway API's v1 types. Node comes with
# the machine; Debian's nodejs leaves npm to a package of its own.
command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
npm install --prefix .tools/gateway-api --no-audit --no-fund --silent '@kubernetes-models/gateway-api@2.0.0'
