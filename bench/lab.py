"""Benchmark: lab up for 3 hosts from the cached image, one check run, lab down.

Both flavours: systemd-nspawn (real systemd, the default) and plain (namespaces + tini, the
fallback). Baseline measured in the same run: unpacking the image once, which a lab without
overlays would pay for every host. Target (docs/lab.md): 3 hosts up in under 10 s.
"""

from __future__ import annotations

import subprocess
import tempfile

from benchlab import BenchLab, checks_per_host, timed

from cityguard.config import cache_dir, content_root
from cityguard.lab.description import load_lab_file
from cityguard.lab.image import ensure_image

HOSTS = "web1,db1,scratch1"


def unpack_seconds() -> float:
    recipe = load_lab_file(content_root() / "examples" / "site" / "lab.yml").image
    image = ensure_image(cache_dir(), recipe)
    with tempfile.TemporaryDirectory(dir=image.archive.parent) as target:
        seconds, _ = timed(
            lambda: subprocess.run(
                ["tar", "--zstd", "-xf", str(image.archive), "-C", target], check=True
            )
        )
    return seconds


def main() -> None:
    baseline = unpack_seconds()
    print(f"baseline: unpacking the image once {baseline:.2f} s")
    for flavour in ("nspawn", "plain"):
        up_s, lab = timed(lambda: BenchLab.start(HOSTS, flavour))  # noqa: B023
        try:
            check_s, report = lab.check(HOSTS)
        finally:
            down_s, _ = timed(lab.stop)
        checks = sum(checks_per_host(report).values())
        print(
            f"{flavour}: lab up, 3 hosts: {up_s:.2f} s (target < 10 s; ratio to baseline "
            f"{up_s / baseline:.2f}); check, {checks} checks: {check_s:.2f} s; "
            f"lab down: {down_s:.2f} s"
        )


if __name__ == "__main__":
    main()
