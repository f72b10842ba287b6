#!/usr/bin/env bash
# Versity Gateway (S3 server with Object Lock, Apache-2.0), pinned, built with Go and cached
# under $CITYGUARD_CACHE. The tests start it on 127.0.0.1 with a data directory of their own.
set -euo pipefail
exec bash "$(dirname "$0")/../go_install.sh" versitygw 1.8.0 \
  github.com/versity/versitygw/cmd/versitygw
