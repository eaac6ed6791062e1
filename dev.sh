#!/usr/bin/env bash
# Quick start helper: creates .venv/ at the repository root when it is missing,
# installs the project into it, then runs what was asked.
#
#   ./dev.sh demo [--out DIR] [--cores N]   run the demo study; last line = the PDF's path
#   ./dev.sh test [PYTEST ARGS]             run the test suite
#   ./dev.sh setup                          only set up .venv/
set -euo pipefail
cd "$(dirname "$0")"

setup() {
  if [ ! -x .venv/bin/python ]; then
    PY=python3.11; command -v "$PY" >/dev/null 2>&1 || PY=python3
    echo "creating .venv/ with $("$PY" --version)" >&2
    "$PY" -m venv .venv
  fi
  # Re-install only when the project's dependency list changed.
  local stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "installing acne-study and its dependencies into .venv/ (first time: several minutes)" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' >&2
    rm -f .venv/.installed-*
    touch "$stamp"
  fi
}

cmd="${1:-}"; shift || true
case "$cmd" in
  setup) setup ;;
  demo)  setup; exec .venv/bin/study demo "$@" ;;
  test)  setup; exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@" ;;
  *) echo "usage: ./dev.sh demo [--out DIR] | ./dev.sh test [PYTEST ARGS] | ./dev.sh setup" >&2; exit 2 ;;
esac
