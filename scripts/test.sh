#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds and installs the wheel, then runs the
# Rust checks and tests and the pytest suite. Run it from the repository root:
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

# The fast loop while working: no installs, no servers, one clippy; the wheel rebuilt
# incrementally (the cargo target dir is kept) and installed into this interpreter, then the
# tests that need nothing beyond this process (no `processes`, `databases`, `cloud`, `browser`
# or `bench` mark; see pyproject.toml). CI runs everything: this loop is for the edit in hand.
#   bash scripts/test.sh --fast [pytest arguments]
if [ "${1:-}" = "--fast" ]; then
    shift
    started=$(date +%s)
    command -v maturin >/dev/null || "$PYTHON" -m pip install --quiet --disable-pip-version-check maturin
    cargo fmt --all -- --check
    cargo clippy --all-targets --features python -- -D warnings
    rm -rf target/fast-wheel
    maturin build --release --quiet -o target/fast-wheel
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
        --force-reinstall target/fast-wheel/*.whl
    cd tests_py
    status=0
    "$PYTHON" -m pytest -q -p no:cacheprovider -m "not (processes or databases or cloud or browser or bench)" "$@" \
        || status=$?
    echo "== fast loop: $(( $(date +%s) - started )) s"
    exit $status
fi

# The benchmark harness test compares against restic and borg, timed by /usr/bin/time, and
# sorts lightrag-backup's CPU into stages with perf.
if ! command -v restic >/dev/null || ! command -v borg >/dev/null || [ ! -x /usr/bin/time ] \
        || ! command -v perf >/dev/null; then
    echo "== installing restic, borg, time and perf (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic borgbackup time linux-perf >/dev/null
fi
# Safety snapshots a week old are made by a process whose clock is set back (libfaketime).
if ! command -v faketime >/dev/null; then
    echo "== installing faketime (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null
fi
# The status page is tested in a real browser: headless Chromium (Debian).
if ! command -v chromium >/dev/null; then
    echo "== installing chromium (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# Every backend runs for real: Azurite (Azure Blob), moto and s3s-fs (S3) on loopback.
if ! command -v npm >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
echo "== object-store test servers"
bash scripts/test-servers.sh start
ROOT=$(pwd)
trap 'bash "$ROOT/scripts/test-servers.sh" stop' EXIT
eval "$(bash scripts/test-servers.sh env)"
export LRB_REQUIRE_CLOUD_BACKENDS=1

echo "== installing the wheel and the test dependencies"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore ".[test]"

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --features python -- -D warnings

echo "== cargo test"
cargo test --quiet

echo "== stubs match the built module"
(cd /tmp && "$PYTHON" -m mypy.stubtest lightrag.backup._native && "$PYTHON" -m mypy -p lightrag.backup -p lightrag.replication -p lightrag.recovery --ignore-missing-imports)

echo "== pytest"
# Run from a folder outside the source tree so `lightrag.backup` is the installed wheel.
cd tests_py
"$PYTHON" -m pytest -q -p no:cacheprovider --durations=15 "$@"
