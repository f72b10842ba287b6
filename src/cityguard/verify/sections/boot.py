"""How a host boots its kernel: the running kernel's command line and the `linux` lines of
grub.cfg, where controls such as `audit=1` and `apparmor=1` must be set to survive a reboot.
"""

from __future__ import annotations

from dataclasses import dataclass

from cityguard.verify.facts import register_section


@dataclass(frozen=True)
class Boot:
    cmdline: tuple[str, ...]
    grub_cfg: bool  # /boot/grub/grub.cfg exists
    kernel_lines: tuple[tuple[str, ...], ...]  # the parameters of each `linux` line in grub.cfg


def parse_boot(lines: list[str]) -> Boot:
    cmdline: tuple[str, ...] = ()
    present, kernels = False, []
    for line in lines:
        tag, _, text = line.partition(" ")
        if tag == "C":
            cmdline = tuple(text.split())
        elif tag == "G":
            present = text.strip() == "present"
        elif tag == "L":
            kernels.append(tuple(text.split()[2:]))  # after `linux /vmlinuz-...`
    return Boot(cmdline, present, tuple(kernels))


BOOT_COMMAND = (
    "sed 's/^/C /' /proc/cmdline; if [ -f /boot/grub/grub.cfg ]; then echo 'G present'; "
    "grep -E '^[[:space:]]*linux[[:space:]]' /boot/grub/grub.cfg | sed 's/^[[:space:]]*/L /';"
    " else echo 'G absent'; fi"
)

register_section("system-boot", BOOT_COMMAND, parse_boot)
