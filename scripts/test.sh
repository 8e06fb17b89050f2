#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds and installs the wheel, then runs the
# Rust checks and tests and the pytest suite. Run it from the repository root:
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
echo "== installing the wheel and the test dependencies"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore ".[test]"

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --features python -- -D warnings

echo "== cargo test"
cargo test --quiet

echo "== stubs match the built module"
(cd /tmp && "$PYTHON" -m mypy.stubtest lightrag.backup._native && "$PYTHON" -m mypy -p lightrag.backup --ignore-missing-imports)

echo "== pytest"
# Run from a folder outside the source tree so `lightrag.backup` is the installed wheel.
cd tests_py
"$PYTHON" -m pytest -q -p no:cacheprovider "$@"
