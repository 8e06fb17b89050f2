#!/usr/bin/env bash
# The peers bench/run.py measures beside Debian's restic 0.14 and borg 1.2, both of which always
# encrypt or are told not to: restic 0.18 (Debian trixie's static binary: the suite is added at
# pin priority 1 for one `apt-get download`, then removed), borg 1.4 (PyPI, in its own venv;
# about a minute to build) and rustic (crates.io; about 15 minutes to build on 2 cores).
# Installed under $LRB_BENCH_PEERS (default /opt/lrb-bench-peers):
#   bash bench/peers.sh && export PATH=/opt/lrb-bench-peers/bin:$PATH
set -euo pipefail
DEST=${LRB_BENCH_PEERS:-/opt/lrb-bench-peers}
RUSTIC_VERSION=${RUSTIC_VERSION:-0.11.4}
mkdir -p "$DEST/bin"

if [ ! -x "$DEST/bin/restic18" ]; then
    echo "== restic 0.18 (Debian trixie, static binary)"
    list=/etc/apt/sources.list.d/lrb-bench-trixie.list
    pin=/etc/apt/preferences.d/lrb-bench-trixie
    work=$(mktemp -d)
    cleanup() { rm -f "$list" "$pin"; rm -rf "$work"; apt-get update -qq || true; }
    trap cleanup EXIT
    echo "deb http://deb.debian.org/debian trixie main" >"$list"
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 1\n' >"$pin"
    apt-get update -qq
    (cd "$work" && apt-get download -qq restic/trixie)
    dpkg -x "$work"/restic_*.deb "$work/root"
    install -m 0755 "$work/root/usr/bin/restic" "$DEST/bin/restic18"
    cleanup
    trap - EXIT
fi
"$DEST/bin/restic18" version

if [ ! -x "$DEST/bin/borg14" ]; then
    echo "== borg 1.4 (PyPI, built against Debian's libraries)"
    apt-get install -y -qq libacl1-dev libssl-dev liblz4-dev libzstd-dev libxxhash-dev pkg-config \
        python3-dev python3-venv >/dev/null
    python3 -m venv "$DEST/borg14"
    "$DEST/borg14/bin/pip" install -q "borgbackup>=1.4,<1.5"
    ln -sf "$DEST/borg14/bin/borg" "$DEST/bin/borg14"
fi
"$DEST/bin/borg14" --version

if [ ! -x "$DEST/bin/rustic" ]; then
    echo "== rustic $RUSTIC_VERSION (crates.io)"
    cargo install --quiet --locked --version "$RUSTIC_VERSION" rustic-rs --root "$DEST"
fi
"$DEST/bin/rustic" --version
