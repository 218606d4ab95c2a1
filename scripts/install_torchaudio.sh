#!/usr/bin/env bash
# torchaudio for the tokenizer families whose authors' code imports it (SpeechTokenizer, ...);
# why this way: docs/torchaudio.md. tokbench itself never loads audio through torchaudio.
#
#   PY=.venv/bin/python bash scripts/install_torchaudio.sh
#
# 1. The torchaudio release that matches torch (torch 2.X.Y -> torchaudio==2.X.Y), where the
#    registry offers one (GPU machines: the same release as torch).
# 2. Otherwise the pinned TORCHAUDIO_FALLBACK, without its dependencies (they would replace torch).
# 3. If its compiled extension does not load beside this torch (a CUDA build beside a CPU torch:
#    libc10_cuda.so is missing), the extension is removed (torchaudio/lib/*.so): torchaudio then
#    imports, and the pure-Python functions the adapters use work (tests/test_torchaudio.py).
# Run it last, after every family package: a family that depends on torchaudio would otherwise
# bring the extension back. It never changes torch (checked at the end).
set -euo pipefail
PY=${PY:-.venv/bin/python}
# A py3-none wheel (any Python >= 3.10) that declares only torch>=2.11; measured in docs/torchaudio.md.
TORCHAUDIO_FALLBACK=${TORCHAUDIO_FALLBACK:-2.11.1}
pip() { "$PY" -m pip --disable-pip-version-check -q "$@"; }

torch_before=$("$PY" -c 'import torch; print(torch.__version__)')
release=${torch_before%%+*}
if pip install --no-deps "torchaudio==$release" 2>/dev/null; then
  echo "torchaudio: the release matching torch $torch_before ($release)"
else
  echo "torchaudio: no release $release for torch $torch_before; torchaudio $TORCHAUDIO_FALLBACK without its dependencies"
  pip install --no-deps "torchaudio==$TORCHAUDIO_FALLBACK"
fi

if ! "$PY" -c 'import torchaudio' 2>/dev/null; then
  # find_spec locates the package without importing it (the import is what fails)
  dir=$("$PY" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("torchaudio").origin))')
  echo "torchaudio: its compiled extension does not load beside torch $torch_before: removing $dir/lib/*.so"
  rm -f "$dir"/lib/*.so
  "$PY" -c 'import torchaudio'
fi

torch_after=$("$PY" -c 'import torch; print(torch.__version__)')
if [ "$torch_before" != "$torch_after" ]; then
  echo "error: installing torchaudio changed torch from $torch_before to $torch_after" >&2
  exit 1
fi
"$PY" -c 'import torchaudio, torch; print("torchaudio", torchaudio.__version__, "beside torch", torch.__version__)'
