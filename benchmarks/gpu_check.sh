#!/bin/sh
# What only a CUDA GPU can show, in one run on a lent GPU machine (its image has python3 with a
# CUDA torch; .device/ from benchmarks/gpu_prepare.sh carries the rest). Each step has its own
# time limit so that one slow step leaves the others their time; logs go to $OUT (the device
# tool brings that folder back), else to gpu-check/.
set -u
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device/whl/*.whl || exit 1
# imagecodecs (16-bit PNG, compressed TIFF) is not in the image and its wheel does not fit beside
# PyAV: a stand-in says so if a step ever needs it (none of these does)
mkdir -p /tmp/stub/imagecodecs
printf 'def __getattr__(name):\n    raise ImportError("imagecodecs is not installed on this machine")\n' > /tmp/stub/imagecodecs/__init__.py
export PYTHONPATH="$PWD:/tmp/site:/tmp/stub" SR_FILTER_SHARED="$PWD/.device/shared" SR_FILTER_CACHE_DIR=/tmp/sr-cache PYTHONUNBUFFERED=1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" > "$OUT/torch.txt" 2>&1
step() {
    name=$1 limit=$2
    shift 2
    start=$(date +%s)
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "== $name: exit $? in $(( $(date +%s) - start )) s (limit $limit s)"
    tail -n 30 "$OUT/$name.log"
}
cat "$OUT/torch.txt"
step tests 180 python3 -m pytest -q -p no:cacheprovider -p no:cov tests/test_cuda.py -rs
step tiling 120 python3 benchmarks/bench_tiling.py --repeats 5 --device cuda
step models 60 python3 benchmarks/bench_models.py -m sr-cartoon-x4 -m sr-photo-x4 -m realesr-animevideov3 --device cuda --repeats 5
step video 90 python3 benchmarks/bench_video.py --device cuda --tile auto --size 1280x720 --frames 24 --repeats 5
