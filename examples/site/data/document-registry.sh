#!/bin/sh
# Sample content of the city's document registry (plans/document-registry.yml, source
# `registry`): 120 decisions of three departments and the registry's configuration. Run as
# root on web1 with `sh -e` by `cityguard lab data` (lab.yml); a second run writes it anew.
mkdir -p /etc/document-registry
echo 'retention: 10y' > /etc/document-registry/registry.conf
rm -rf /srv/document-registry
for dept in council finance schools; do
  mkdir -p "/srv/document-registry/$dept"
  for i in $(seq 40); do
    printf 'Decision %s of %s\n' "$i" "$dept" > "/srv/document-registry/$dept/decision-$i.txt"
  done
done
