#!/usr/bin/env bash
# The peers bench/run.py measures beside Debian's restic 0.14 and borg 1.2, both of which always
# encrypt or are told not to: restic 0.18 (Debian trixie's static binary: the suite is added at
# pin priority 1 for one `apt-get download`, then removed) and rustic (crates.io; about 15
# minutes to build on 2 cores). Installed under $LRB_BENCH_PEERS (default /opt/lrb-bench-peers):
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

if [ ! -x "$DEST/bin/rustic" ]; then
    echo "== rustic $RUSTIC_VERSION (crates.io)"
    cargo install --quiet --locked --version "$RUSTIC_VERSION" rustic-rs --root "$DEST"
fi
"$DEST/bin/rustic" --version
