#!/usr/bin/env bash
# The wheels scripts/gpu_check.py needs on a GPU machine without network, into .whl/ (git-ignored).
#
#   bash scripts/prepare_gpu_wheels.sh [DIR]     # default .whl; run here, where pip reaches PyPI
#
# That machine (Python 3.12, CUDA torch, transformers, peft, accelerate; no trl, lm-eval, datasets
# or vllm) receives at most 64 MiB with the checkout. These are the packages it lacks, or has at
# other versions than CI, at the versions installed here (the pins of pyproject.toml for
# transformers, peft, trl and lm-eval), as wheels without their dependencies: the rest of what
# the checks import is on that machine already (scripts/gpu_check.py's environment line names any
# declared requirement that is missing). Pure-Python wheels except multiprocess, fetched for
# CPython 3.12, that machine's Python (WHEEL_PYTHON=3.11 fetches them for another one, e.g. to try
# the carried set in a bare environment here). CUDA vLLM (gigabytes) cannot travel; vLLM is
# covered by the CPU suite in CI.
set -euo pipefail
case "${1:-}" in
  -h|--help)
    echo "usage: bash scripts/prepare_gpu_wheels.sh [DIR]   (wheels for scripts/gpu_check.py; default .whl)"
    exit 0
    ;;
esac
cd "$(dirname "$0")/.."
DIR=${1:-.whl}
PYTHON=${PYTHON:-python3}
WHEEL_PYTHON=${WHEEL_PYTHON:-3.12}
PACKAGES=(transformers peft trl lm-eval accelerate datasets dill multiprocess)
LIMIT_MIB=48   # of the 64 MiB that travel, leave room for the checkout itself

specs=()
for name in "${PACKAGES[@]}"; do
  version=$("$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name") || {
    echo "prepare_gpu_wheels.sh: error: $name is not installed here (pip install -e '.[dev]' first)" >&2
    exit 2
  }
  specs+=("$name==$version")
done
mkdir -p "$DIR"
rm -f "$DIR"/*.whl
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version "$WHEEL_PYTHON" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d "$DIR" "${specs[@]}"
size=$(du -sm "$DIR" | cut -f1)
ls -1 "$DIR"
echo "$(ls "$DIR"/*.whl | wc -l) wheels, ${size} MiB in $DIR (${specs[*]})"
if [ "$size" -gt "$LIMIT_MIB" ]; then
  echo "prepare_gpu_wheels.sh: error: ${size} MiB is more than ${LIMIT_MIB} MiB" >&2
  exit 1
fi
