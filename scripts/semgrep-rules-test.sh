#!/usr/bin/env bash
# The local semgrep rules' own tests: every `ruleid:` line in .semgrep/bazaar.{py,html} must
# be found and every `ok:` line must not. (`semgrep --test` finds no tests inside a hidden
# folder, so the rules and their cases are copied to a temporary one.)
set -euo pipefail
venv="${1:-.venv}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp .semgrep/bazaar.yml .semgrep/bazaar.py .semgrep/bazaar.html "$work/"
"$venv/bin/semgrep" --test --metrics=off --disable-version-check --quiet "$work" >"$work/out" 2>&1 || {
  cat "$work/out" >&2
  exit 1
}
grep -q "All tests passed" "$work/out" || { cat "$work/out" >&2; exit 1; }
echo "semgrep rules: all test cases pass"
