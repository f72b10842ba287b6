#!/usr/bin/env bash
# Keycloak's server distribution (org.keycloak:keycloak-quarkus-dist, pinned) from Maven Central,
# downloaded once into $CITYGUARD_CACHE/keycloak/<version>/ and unpacked there. The eIDAS tests
# and the demo start it from that directory with their own data directory (tests/integration/
# keycloak_server.py). Idempotent: a second run only prints where it is.
set -euo pipefail
KEYCLOAK_VERSION="${KEYCLOAK_VERSION:-26.7.3}"
CACHE="${CITYGUARD_CACHE:-$HOME/.cache/cityguard}"
DEST="$CACHE/keycloak/$KEYCLOAK_VERSION"
HOME_DIR="$DEST/keycloak-$KEYCLOAK_VERSION"

if [ -x "$HOME_DIR/bin/kc.sh" ]; then
  echo "keycloak $KEYCLOAK_VERSION: $HOME_DIR"
  exit 0
fi
if ! command -v mvn >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends maven
fi
if ! command -v xmlsec1 >/dev/null 2>&1; then
  # pysaml2 (the negative-case IdP of the eIDAS tests) signs and verifies with Debian's xmlsec1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xmlsec1
fi
mkdir -p "$DEST"
mvn -q -B dependency:copy \
  -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:tar.gz" \
  -DoutputDirectory="$DEST" -Dmaven.repo.local="$CACHE/maven"
tar -xzf "$DEST/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz" -C "$DEST"
rm -f "$DEST/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz"
echo "keycloak $KEYCLOAK_VERSION: $HOME_DIR"
