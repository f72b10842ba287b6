#!/usr/bin/env bash
# restic, pinned, built as a static binary with Go and cached under $CITYGUARD_CACHE.
# Debian's restic (0.14) lacks --stdin-from-command, JSON errors and distinct exit codes.
set -euo pipefail
VERSION=0.19.1
MODULE=github.com/restic/restic/cmd/restic
CACHE=${CITYGUARD_CACHE:-$HOME/.cache/cityguard}
BIN_DIR=$CACHE/go/bin-restic-$VERSION
if [ ! -x "$BIN_DIR/restic" ]; then
  # Debian 12's golang-go (1.19) is too old for this module: a newer Go must be on PATH
  command -v go >/dev/null || { echo "$0: needs Go >= 1.23 on PATH to build" >&2; exit 1; }
  mkdir -p "$BIN_DIR.partial"
  GOBIN=$BIN_DIR.partial GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build CGO_ENABLED=0 \
    GOFLAGS=-trimpath go install "$MODULE@v$VERSION"
  rm -rf "$BIN_DIR" && mv "$BIN_DIR.partial" "$BIN_DIR"
fi
echo "restic $VERSION: $BIN_DIR/restic"
