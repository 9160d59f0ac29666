#!/usr/bin/env bash
# Install the course into ./.venv: a CPU build of PyTorch, then mmcourse with what the lessons
# need, and the course's JupyterLab settings (scripts/jupyter_settings.py). Safe to run again; it
# only installs what is missing.
#
#   bash scripts/install.sh                            # a learner's set: the lessons and JupyterLab
#   bash scripts/install.sh --dev                      # and the test tools (the README's test command)
#   bash scripts/install.sh --instructor               # and nbgrader, with its JupyterLab panels
#   PYTHON=python3.12 bash scripts/install.sh          # choose the interpreter (3.11 or newer)
#   TORCH_INDEX=https://download.pytorch.org/whl/cu124 bash scripts/install.sh   # a CUDA build
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
INSTRUCTOR=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    --instructor) INSTRUCTOR=1 ;;
    *) echo "unknown option $arg (expected --dev or --instructor)" >&2; exit 2 ;;
  esac
done
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "mmcourse needs Python 3.11 or newer; set PYTHON=... to choose one" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip=(.venv/bin/python -m pip install --disable-pip-version-check --quiet)

# PyTorch first, so that installing mmcourse does not pull the much larger default (CUDA) build.
# PyTorch's CPU index is tried first; where it cannot be reached, pip falls back to PyPI
# (and to any local wheel mirror configured for pip).
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${pip[@]}" --retries 1 --timeout 15 "torch==${TORCH_VERSION}" --extra-index-url "$TORCH_INDEX"
fi
extras=()
[ "$DEV" = 1 ] && extras+=(dev)
[ "$INSTRUCTOR" = 1 ] && extras+=(instructor)
if [ ${#extras[@]} -gt 0 ]; then
  "${pip[@]}" -e ".[$(IFS=,; echo "${extras[*]}")]"
else
  "${pip[@]}" -e .
fi
settings=(.venv/bin/python scripts/jupyter_settings.py)
[ "$INSTRUCTOR" = 1 ] && settings+=(--instructor)
"${settings[@]}" >/dev/null
if [ "$DEV" = 1 ]; then
  # The course website serves its own copies of MathJax, RequireJS and the widget manager: fetch them
  # now (from the npm registry), so that building and testing the site never downloads anything.
  if command -v npm >/dev/null; then
    bash scripts/site_assets.sh >/dev/null || echo "could not fetch the website's scripts; the website test will say so" >&2
  else
    echo "npm not found: the website's scripts were not fetched (only the website needs them)" >&2
  fi
fi
echo "mmcourse is installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
