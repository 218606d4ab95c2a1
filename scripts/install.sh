#!/usr/bin/env bash
# Create or update the virtual environment with everything tokbench and its tests need.
# On a machine without an NVIDIA GPU: the local CPU build of torch first (a bare `torch`
# requirement would pull the CUDA build, gigabytes), and openai-whisper without triton (1 GB,
# GPU-only kernels; Whisper runs without it).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
STAMP="$VENV/.tokbench-installed"
# Extras the tests need besides `test`: optional tokenizer packages whose adapters are tested.
# nemo (the nemo-fastconformer ASR back-end): about 20 s and 500 MB on top of the rest.
# speechtokenizer: SpeechTokenizer from its authors' package (brings torchaudio: see below).
export TOKBENCH_EXTRAS="test,classic,snac,nemo,speechtokenizer"

if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && [ "$STAMP" -nt scripts/install.sh ] \
   && [ "$STAMP" -nt scripts/install_torchaudio.sh ]; then
  exit 0
fi
[ -x "$PY" ] || python3 -m venv "$VENV"
pip() { "$PY" -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip 'setuptools<81' wheel

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  pip install -e ".[$TOKBENCH_EXTRAS]"
else
  "$PY" -c 'import torch' 2>/dev/null || pip install torch==2.13.0
  # Every declared dependency except openai-whisper, then openai-whisper without triton.
  "$PY" -c 'import tomllib' 2>/dev/null || pip install tomli  # Python 3.10
  "$PY" - > "$VENV/requirements.cpu.txt" <<'PYEOF'
try:
    import tomllib
except ImportError:
    import tomli as tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
import os
extras = project["optional-dependencies"]
deps = project["dependencies"] + [d for e in os.environ["TOKBENCH_EXTRAS"].split(",") for d in extras[e]]
print("\n".join(d for d in deps if not d.startswith("openai-whisper")))
print("more-itertools\nnumba\ntiktoken")
PYEOF
  pip install -r "$VENV/requirements.cpu.txt"
  pip install --no-deps 'openai-whisper>=20240930'
  pip install --no-deps -e .
fi

# --- torchaudio (issue 27; docs/torchaudio.md) -------------------------------------------------
# Last of the Python installs, so that no family package brings torchaudio's compiled extension
# back: the release matching torch where the registry offers one, else the pinned CUDA build
# without its dependencies and without its compiled extension. Never changes torch.
PY="$PY" bash scripts/install_torchaudio.sh
# --- end torchaudio ----------------------------------------------------------------------------

# Headless Chromium for the leaderboard browser test (Debian package).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"  # never wait for a password
  ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser test will be skipped" >&2
fi
# libopus for the Opus tokenizer (opuslib-next loads it with ctypes; Debian package).
if ! ldconfig -p 2>/dev/null | grep -q 'libopus\.so' && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq libopus0 >/dev/null) \
    || echo "warning: could not install libopus0; the Opus tokenizer and its tests need it" >&2
fi
touch "$STAMP"
