#!/usr/bin/env bash
# Builds one pinned Go program as a static binary, cached under $CITYGUARD_CACHE with Go's module
# and build caches, and prints where it is. Used by the component scripts in tools/components/.
# Usage: go_install.sh NAME VERSION MODULE   (MODULE without @version)
set -euo pipefail
NAME=$1 VERSION=$2 MODULE=$3
CACHE=${CITYGUARD_CACHE:-$HOME/.cache/cityguard}
BIN_DIR=$CACHE/go/bin-$NAME-$VERSION
if [ ! -x "$BIN_DIR/$NAME" ]; then
  # Debian 12's golang-go (1.19) is too old for these modules: a newer Go must be on PATH
  command -v go >/dev/null || { echo "$0: needs Go >= 1.23 on PATH to build $NAME" >&2; exit 1; }
  mkdir -p "$BIN_DIR.partial"
  GOBIN=$BIN_DIR.partial GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build CGO_ENABLED=0 \
    GOFLAGS=-trimpath go install "$MODULE@v$VERSION"
  rm -rf "$BIN_DIR" && mv "$BIN_DIR.partial" "$BIN_DIR"
fi
echo "$NAME $VERSION: $BIN_DIR/$NAME"
