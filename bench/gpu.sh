#!/bin/sh
# bench/gpu.py on a GPU machine as one command, offline: install claws from this checkout (no
# dependencies fetched: torch, torchvision, h5py, OpenCV... come with the machine's image), add
# wheels carried in .whl/ (PyAV, when the image lacks it: else the bench reads JPEG frame folders
# and says so), then run the bench under a hard time limit (default 480 s; the bench's own budget,
# --time-limit, is 420 s, so it prints its JSON first). Arguments go to bench/gpu.py.
#   sh bench/gpu.sh                        # e.g. GPU_BENCH_TIMEOUT=540 sh bench/gpu.sh --rounds 3
set -e
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/claws-site .whl/*.whl
    export PYTHONPATH=/tmp/claws-site
fi
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . \
    || { echo "bench/gpu.sh: cannot install claws from $(pwd) (pip, setuptools >= 68)" >&2; exit 2; }
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
PYTHONUNBUFFERED=1 exec timeout "${GPU_BENCH_TIMEOUT:-480}" python3 bench/gpu.py "$@"
