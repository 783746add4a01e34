#!/usr/bin/env bash
# Create .venv (if missing) and install every DP3 package, editable, from pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.dp3-installed
# _build.py: the binding is compiled at install; a new C declaration there must rebuild it.
inputs=(constraints.txt requirements-dev.txt libs/dp3/pyproject.toml services/*/pyproject.toml field/pyproject.toml services/dispatcher/setup.py
  services/dispatcher/src/dp3_dispatcher/workqueue/_build.py)
if [ -f "$stamp" ] && [ -z "$(find "${inputs[@]}" -newer "$stamp" 2>/dev/null)" ]; then
  exit 0
fi
.venv/bin/pip install -q --upgrade pip setuptools wheel
.venv/bin/pip install -q -c constraints.txt -r requirements-dev.txt \
  -e libs/dp3 -e services/scanner -e services/dispatcher -e services/archiver -e services/portal -e services/intake -e field
touch "$stamp"
