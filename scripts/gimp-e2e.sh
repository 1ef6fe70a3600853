#!/bin/sh
# One command for the GIMP 3 plug-in's end-to-end tests (needs root, Debian 12 x86_64 host):
#   sudo [GIMP3_ROOT=/var/cache/gimp3-root] scripts/gimp-e2e.sh [pytest args]
# Builds (once) the gimp3-env chroot with GIMP 3, adds Debian's CPU torch and this checkout of
# sr-filter with its pure-Python dependencies, then runs tests/test_gimp_plugin.py with
# $PYTHON, else .venv/bin/python, else python. Idempotent; about 10 min the first time
# (Debian mirror + GIMP + torch), 2-3 min after that.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SR_FILTER_SHARED:-$(cd "$REPO/.." && pwd)/shared}
ENV_SH="$SHARED/gimp3/gimp3-env.sh"
export GIMP3_ROOT="${GIMP3_ROOT:-/var/cache/gimp3-root}"
# pytest runs with $PYTHON, else the README's .venv, else the python on PATH
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python; fi
fi

[ -x "$ENV_SH" ] || { echo "gimp-e2e: $ENV_SH not found (set SR_FILTER_SHARED)" >&2; exit 2; }
"$ENV_SH" setup
# torch from Debian (CPU, ~1 GB): pip would pull the multi-GB CUDA build.
"$ENV_SH" run python3 -c 'import torch' 2>/dev/null || "$ENV_SH" apt-install python3-torch
"$ENV_SH" run python3 -c 'import click, platformdirs, requests, tifffile, filelock, PIL, tqdm, imagecodecs, psutil' 2>/dev/null \
  || "$ENV_SH" pip-install click platformdirs requests tifffile filelock pillow tqdm imagecodecs psutil
(cd "$REPO" && "$ENV_SH" pip-install --no-deps --force-reinstall ./)

cd "$REPO"
SR_FILTER_SHARED="$SHARED" GIMP3_ENV_DIR="$SHARED/gimp3" SR_FILTER_REQUIRE_GIMP=1 \
  exec "$PYTHON" -m pytest -rs tests/test_gimp_plugin.py "$@"
