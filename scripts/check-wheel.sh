#!/usr/bin/env bash
# What a user gets from `pip install`: build the wheel, install it ALONE (no checkout on the path)
# in a fresh venv with torch, and run one real upscale from it, so that a file missing from the
# package (manifest, built-in weights, a module) fails here and not on a user's machine.
#   scripts/check-wheel.sh [PYTHON]     (PYTHON: the interpreter for the venv, default python3)
# Offline-capable: torch==2.13.0 and setuptools come from the configured package index.
# Then the I/O tests with the oldest Pillow and imagecodecs the package declares.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${1:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# build from a clean copy of the sources: setuptools reuses build/ and *.egg-info in the tree it
# builds in, whose stale files would hide one missing from the package data
mkdir "$WORK/src"
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | tar -cf - -C "$REPO" --null -T - --ignore-failed-read | tar -xf - -C "$WORK/src"
else
  tar -cf - -C "$REPO" --exclude=./.venv --exclude=./build --exclude='*.egg-info' --exclude=./.git . | tar -xf - -C "$WORK/src"
fi
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" -q wheel --no-deps -w "$WORK/dist" "$WORK/src"
"$WORK/venv/bin/pip" -q install "torch==2.13.0" "$WORK"/dist/*.whl
cd "$WORK"  # not the checkout: the installed package is the only sr_filter there is
export SR_FILTER_CACHE_DIR="$WORK/cache" SR_FILTER_OFFLINE=1 PYTHONPATH=
venv/bin/python - <<'EOF'
import numpy as np
from PIL import Image

import sr_filter

assert "/venv/" in sr_filter.__file__, f"sr_filter imported from {sr_filter.__file__}, not the wheel"
y, x = np.mgrid[0:24, 0:20]
Image.fromarray(np.stack([x * 12, y * 10, (x + y) * 5], axis=-1).astype(np.uint8)).save("in.png")
EOF
venv/bin/sr-filter --preset cartoon in.png -o out.png --tile 32
venv/bin/python -c "
from PIL import Image
size = Image.open('out.png').size
assert size == (80, 96), f'output is {size}, expected (80, 96)'
print('wheel ok: sr-filter --preset cartoon 20x24 -> 80x96 from an installed', __import__('sr_filter').__file__)
"
# the wheel holds sr_filter and its metadata only (no other top-level name in site-packages), and
# the GIMP plug-in installs from it
venv/bin/python -c "
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
tops = sorted({n.split('/')[0] for n in names if not n.split('/')[0].endswith('.dist-info')})
assert tops == ['sr_filter'], f'the wheel puts {tops} into site-packages'
" "$WORK"/dist/*.whl
venv/bin/sr-filter gimp-install --gimp-dir "$WORK/gimp" >/dev/null
test -x "$WORK/gimp/plug-ins/sr-filter/sr-filter.py"

# The oldest Pillow and imagecodecs that pyproject.toml allows: the I/O tests run with them too,
# so a floor that no longer works fails here (checkout's venv, those two packages put first).
FLOOR="$WORK/floor"
"$REPO/.venv/bin/python" -m pip install -q --no-deps --only-binary=:all: --target "$FLOOR" "pillow==11.3.0" "imagecodecs==2024.9.22"
cd "$REPO"
PYTHONPATH="$FLOOR" .venv/bin/python -c "import PIL, imagecodecs; assert PIL.__version__ == '11.3.0', PIL.__version__; print('floor: Pillow', PIL.__version__, 'imagecodecs', imagecodecs.__version__)"
PYTHONPATH="$FLOOR" .venv/bin/python -m pytest tests/test_imageio.py tests/test_io_hardening.py -q -p no:cacheprovider
