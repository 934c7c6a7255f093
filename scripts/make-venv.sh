#!/usr/bin/env bash
# Create the virtualenv with a Python >= 3.12 and install Bazaar into it: the one install
# script of the project. `make install` (developers, CI) and the Dockerfile's builder stage
# both run it, so the image gets exactly the dependencies the tests ran against.
#
#   scripts/make-venv.sh [VENV] [dev|production]
#
# dev (the default): editable, with the dev tools (pytest, ruff, semgrep, hadolint, kubectl…).
# production: the runtime dependencies only, not editable (the image copies the virtualenv
# into its final stage without the build tree).
set -euo pipefail
venv="${1:-.venv}"
profile="${2:-dev}"

case "$profile" in
  dev) target=(-e ".[dev]") ;;
  production) target=(".") ;;
  *)
    echo "usage: $0 [VENV] [dev|production]" >&2
    exit 2
    ;;
esac

pick_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3 python; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  python=$(pick_python) || {
    echo "Bazaar needs Python 3.12 or newer (3.13 recommended); none was found on PATH." >&2
    exit 1
  }
  echo "Creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "${target[@]}"
