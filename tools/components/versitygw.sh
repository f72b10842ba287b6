#!/usr/bin/env bash
# Versity Gateway (S3 server with Object Lock, Apache-2.0), pinned, built with Go and cached
# under $CITYGUARD_CACHE. The tests start it on 127.0.0.1 with a data directory of their own.
set -euo pipefail
VERSION=1.8.0
MODULE=github.com/versity/versitygw/cmd/versitygw
CACHE=${CITYGUARD_CACHE:-$HOME/.cache/cityguard}
BIN_DIR=$CACHE/go/bin-versitygw-$VERSION
if [ ! -x "$BIN_DIR/versitygw" ]; then
  # Debian 12's golang-go (1.19) is too old for this module: a newer Go must be on PATH
  command -v go >/dev/null || { echo "$0: needs Go >= 1.23 on PATH to build" >&2; exit 1; }
  mkdir -p "$BIN_DIR.partial"
  GOBIN=$BIN_DIR.partial GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build CGO_ENABLED=0 \
    GOFLAGS=-trimpath go install "$MODULE@v$VERSION"
  rm -rf "$BIN_DIR" && mv "$BIN_DIR.partial" "$BIN_DIR"
fi
echo "versitygw $VERSION: $BIN_DIR/versitygw"
