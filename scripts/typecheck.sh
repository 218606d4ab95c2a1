#!/usr/bin/env bash
# Type-check tokbench/, adapters/ and tasks/ under their installed names (tokbench.adapters,
# tokbench.tasks): mypy cannot follow setuptools' package-dir mapping, so it checks a tree of
# links laid out the way the package installs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/tokbench"
for entry in tokbench/*; do
  ln -s "$PWD/$entry" "$tree/tokbench/$(basename "$entry")"
done
ln -s "$PWD/adapters" "$tree/tokbench/adapters"
ln -s "$PWD/tasks" "$tree/tokbench/tasks"
cd "$tree"
"$OLDPWD/$PY" -m mypy --config-file "$OLDPWD/pyproject.toml" -p tokbench "$@"
