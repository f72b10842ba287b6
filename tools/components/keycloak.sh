#!/usr/bin/env bash
# Keycloak's server distribution (org.keycloak:keycloak-quarkus-dist, pinned) from Maven Central,
# downloaded once into $CITYGUARD_CACHE/keycloak/<version>/ and unpacked there. The eIDAS tests,
# bench/eidas.py and the demo start it from that directory with their own data directory
# (src/cityguard/lab/keycloak.py). What the eIDAS tests need beside it is checked on
# every run, also when the distribution is cached: a JDK Keycloak 26 runs on (17 or newer) and
# Debian's xmlsec1, with which pysaml2 (the negative-case eIDAS node) signs and encrypts.
# Idempotent: a second run only prints what it has.
set -euo pipefail
KEYCLOAK_VERSION="${KEYCLOAK_VERSION:-26.7.3}"
CACHE="${CITYGUARD_CACHE:-$HOME/.cache/cityguard}"
DEST="$CACHE/keycloak/$KEYCLOAK_VERSION"
HOME_DIR="$DEST/keycloak-$KEYCLOAK_VERSION"

updated=""
apt_install() {
  if [ -z "$updated" ]; then
    apt-get update -qq
    updated=yes
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

has_jdk() {
  local java
  for java in /usr/lib/jvm/*/bin/java; do
    [ -x "$java" ] && return 0
  done
  return 1
}

if ! has_jdk; then
  apt_install openjdk-17-jre-headless
fi
if ! command -v xmlsec1 >/dev/null 2>&1; then
  apt_install xmlsec1
fi

if [ ! -x "$HOME_DIR/bin/kc.sh" ]; then
  if ! command -v mvn >/dev/null 2>&1; then
    apt_install maven
  fi
  mkdir -p "$DEST"
  mvn -q -B dependency:copy \
    -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:tar.gz" \
    -DoutputDirectory="$DEST" -Dmaven.repo.local="$CACHE/maven"
  tar -xzf "$DEST/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz" -C "$DEST"
  rm -f "$DEST/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz"
fi
echo "keycloak $KEYCLOAK_VERSION: $HOME_DIR (xmlsec1 $(xmlsec1 --version | cut -d' ' -f2))"
