#!/usr/bin/env bash
# Create or update the virtual environment. Two profiles:
#   full (default; `make test`): every extra the tests need, and headless Chromium for the
#        leaderboard browser test;
#   demo (`make demo`): only what the demo runs: the classic codecs (Opus needs the system
#        libopus), no test tools, no SNAC, no NeMo (about 1 GB less).
# On a machine without an NVIDIA GPU: the local CPU build of torch first (a bare `torch`
# requirement would pull the CUDA build, gigabytes), and openai-whisper without triton (1 GB,
# GPU-only kernels; Whisper runs without it).
#
# Stamps: $VENV/.tokbench-python-<profile> once pip has installed the profile's packages, and
# $VENV/.tokbench-installed (full) or $VENV/.tokbench-installed-demo only when everything the
# profile needs is there, system libraries included. A system package that could not be
# installed (no sudo, another process holding the dpkg lock) is tried again on the next run;
# the dpkg lock is waited for (TOKBENCH_APT_ATTEMPTS tries, TOKBENCH_APT_SLEEP seconds apart).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PROFILE=${TOKBENCH_PROFILE:-full}
PY="$VENV/bin/python"
APT_ATTEMPTS=${TOKBENCH_APT_ATTEMPTS:-30}
APT_SLEEP=${TOKBENCH_APT_SLEEP:-10}
case "$PROFILE" in
  # nemo (the nemo-fastconformer ASR back-end): about 20 s and 500 MB on top of the rest.
  # speechtokenizer: SpeechTokenizer from its authors' package (torchaudio: see below).
  full) EXTRAS="test,classic,snac,nemo,speechtokenizer"; STAMP="$VENV/.tokbench-installed"; NEED_CHROMIUM=1 ;;
  demo) EXTRAS="classic"; STAMP="$VENV/.tokbench-installed-demo"; NEED_CHROMIUM=0 ;;
  *) echo "error: TOKBENCH_PROFILE must be full or demo, got '$PROFILE'" >&2; exit 2 ;;
esac
export TOKBENCH_EXTRAS="$EXTRAS"
PY_STAMP="$VENV/.tokbench-python-$PROFILE"

fresh() {  # the file exists and is newer than what decides the install
  [ -f "$1" ] && [ "$1" -nt pyproject.toml ] && [ "$1" -nt scripts/install.sh ] \
    && [ "$1" -nt scripts/install_torchaudio.sh ]
}
have_chromium() { command -v chromium >/dev/null 2>&1; }
have_libopus() {  # ldconfig where there is one (Linux); else ctypes, as opuslib-next looks
  if command -v ldconfig >/dev/null 2>&1; then
    ldconfig -p 2>/dev/null | grep -q 'libopus\.so'
  else
    "$PY" -c 'import ctypes.util, sys; sys.exit(ctypes.util.find_library("opus") is None)'
  fi
}
system_ok() { have_libopus && { [ "$NEED_CHROMIUM" = 0 ] || have_chromium; }; }

# The full install serves the demo too.
if fresh "$STAMP" || { [ "$PROFILE" = demo ] && fresh "$VENV/.tokbench-installed"; }; then
  exit 0
fi

if ! fresh "$PY_STAMP"; then
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
  # --- torchaudio (issue 27; docs/torchaudio.md) -----------------------------------------------
  # Last of the Python installs, so that no family package brings torchaudio's compiled
  # extension back: the release matching torch where the registry offers one, else the pinned
  # CUDA build without its dependencies and without its compiled extension. Never changes torch.
  # Only the families that need it (full profile) do.
  if [ "$PROFILE" = full ]; then
    PY="$PY" bash scripts/install_torchaudio.sh
  fi
  # --- end torchaudio --------------------------------------------------------------------------
  touch "$PY_STAMP"
fi

# System packages (Debian): apt-get waits for the dpkg lock, and the whole call is retried
# while another process holds it (an unattended upgrade on a fresh machine).
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  local sudo="" attempt out
  [ "$(id -u)" = 0 ] || sudo="sudo -n"  # never wait for a password
  for attempt in $(seq 1 "$APT_ATTEMPTS"); do
    if out=$($sudo apt-get -o DPkg::Lock::Timeout=60 update -qq 2>&1 \
             && $sudo apt-get -o DPkg::Lock::Timeout=60 install -y -qq "$@" 2>&1 >/dev/null); then
      return 0
    fi
    if ! grep -qiE 'could not get lock|unable to acquire|is locked|lock-frontend' <<<"$out"; then
      echo "$out" >&2
      return 1
    fi
    echo "apt-get: the dpkg lock is held by another process; trying again in ${APT_SLEEP} s" \
         "($attempt of $APT_ATTEMPTS)" >&2
    sleep "$APT_SLEEP"
  done
  return 1
}

# libopus for the Opus tokenizer (opuslib-next loads it with ctypes).
if ! have_libopus; then
  apt_install libopus0 \
    || echo "warning: could not install libopus0; the Opus tokenizer needs it (apt-get install" \
            "libopus0 or brew install opus); make tries again next time" >&2
fi
# Headless Chromium for the leaderboard browser test.
if [ "$NEED_CHROMIUM" = 1 ] && ! have_chromium; then
  apt_install chromium \
    || echo "warning: could not install chromium; the browser test will be skipped; make tries" \
            "again next time" >&2
fi
if system_ok; then
  touch "$STAMP"
fi
