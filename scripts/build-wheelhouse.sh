#!/usr/bin/env bash
# Download the pinned wheels (constraints.txt) every DP3 service image installs,
# plus what pip needs to build the DP3 packages themselves, into the images'
# build context (deploy/docker/wheels). Images built with
# --build-arg PIP_NO_INDEX=1 then install from there only: reproducible, and no
# HTTPS (and so no certificate store) needed inside the build.
set -euo pipefail
cd "$(dirname "$0")/.."
pip=${PIP:-.venv/bin/pip}
if [ ! -x "$pip" ]; then
  # A head node without the development venv: pip in a small venv of its own.
  [ -x var/wheelhouse-venv/bin/pip ] || python3 -m venv var/wheelhouse-venv
  pip=var/wheelhouse-venv/bin/pip
fi
wheels=deploy/docker/wheels
stamp=$wheels/.complete
inputs=(constraints.txt libs/dp3/pyproject.toml services/*/pyproject.toml deploy/docker/local/mongodb.requirements "$0")
if [ -f "$stamp" ] && [ -z "$(find "${inputs[@]}" -newer "$stamp" 2>/dev/null)" ]; then
  exit 0
fi
rm -f "$stamp"
# The services' own dependencies, resolved from their pyproject files; the
# build backend of each DP3 package; the catalog stand-in's server.
"$pip" download -q --only-binary :all: -c constraints.txt -d "$wheels" --find-links "$wheels" \
  ./libs/dp3 ./services/scanner ./services/dispatcher ./services/archiver ./services/portal ./services/intake \
  -r deploy/docker/local/mongodb.requirements \
  "setuptools>=68" wheel "cffi>=1.15" pycparser
touch "$stamp"
