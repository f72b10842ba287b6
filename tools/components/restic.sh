#!/usr/bin/env bash
# restic, pinned, built as a static binary with Go and cached under $CITYGUARD_CACHE.
# Debian's restic (0.14) lacks --stdin-from-command, JSON errors and distinct exit codes.
set -euo pipefail
exec bash "$(dirname "$0")/../go_install.sh" restic 0.19.1 github.com/restic/restic/cmd/restic
