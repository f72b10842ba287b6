#!/bin/sh
# Sample uploads of the citizen e-services portal (plans/citizen-portal.yml, source `uploads`):
# 180 documents residents attached to their applications, by year, of different sizes (about
# 5 MB in all). Run as root on db1 with `sh -e` by `cityguard lab data` (lab.yml); a second run
# writes the tree anew.
rm -rf /srv/citizen-portal/uploads
for year in 2024 2025 2026; do
  mkdir -p "/srv/citizen-portal/uploads/$year"
  for i in $(seq 60); do
    head -c $((i * 997)) /dev/urandom > "/srv/citizen-portal/uploads/$year/doc-$i.pdf"
  done
done
