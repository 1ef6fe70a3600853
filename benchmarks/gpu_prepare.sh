#!/bin/sh
# Fills the git-ignored .device/ with what benchmarks/gpu_check.sh needs on a lent GPU machine,
# which reaches no network: the upstream weights, Set5 and Set14, and the wheels its image lacks
# (platformdirs; PyAV for the video checks; realesrgan for the RealESRGANer comparison). About
# 48 MB, inside the 64 MiB that travels with the working tree. Run here, from the repository root:
#   sh benchmarks/gpu_prepare.sh
# then with the device tool: run(command="sh benchmarks/gpu_check.sh", carry=[".device"], timeout_s=600)
set -eu
shared=${SR_FILTER_SHARED:-../shared}
python=${PYTHON:-.venv/bin/python}
rm -rf .device
mkdir -p .device/whl .device/shared/weights .device/shared/data/benchmarks
cp -r "$shared/weights/upstream" .device/shared/weights/
cp -r "$shared/data/benchmarks/Set5" "$shared/data/benchmarks/Set14" .device/shared/data/benchmarks/
mkdir -p .device/shared/data/train/anime_samples  # the benchmarks' 1280x720 frame is made from it
cp "$shared/data/train/anime_samples/apisr_img_eva.jpeg" .device/shared/data/train/anime_samples/
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .device/whl platformdirs "av==18.1.0" "realesrgan==0.3.0"
du -sh .device
