"""The umask a non-login SSH session really gets: `ssh host cmd`, sftp, scp and Ansible.

A umask line in /etc/profile.d reaches login shells only; a command run over SSH gets what PAM's
session stack (pam_umask) left, or sshd's own 0022. The checks reach the host over SSH, so the
gathering walks up from its own process to the one sshd started for this connection and reads
that process's umask from /proc: the value every command of the session started with.
"""

from __future__ import annotations

from dataclasses import dataclass

from cityguard.verify.facts import register_section

SESSION_COMMAND = (
    "pid=$$; "
    'while [ "${pid:-0}" -gt 1 ]; do '
    "ppid=$(awk '/^PPid:/ {print $2}' /proc/$pid/status 2>/dev/null); "
    '[ -n "$ppid" ] || break; '
    'if [ "$(cat /proc/$ppid/comm 2>/dev/null)" = sshd ]; then '
    "awk '/^Umask:/ {print \"umask\\t\" $2}' /proc/$pid/status; "
    "printf 'process\\t%s\\n' \"$(tr '\\0' ' ' < /proc/$pid/cmdline | cut -c1-60)\"; "
    "exit 0; fi; "
    "pid=$ppid; done; "
    "echo '@@error'; echo 'no SSH session above the gathering process (not reached over SSH)'"
)


@dataclass(frozen=True)
class Session:
    umask: str | None  # as /proc prints it, e.g. 0027
    process: str  # the session's first command, for the evidence

    @property
    def short_umask(self) -> str | None:
        """Three digits, as login.defs and the control's parameter write it (027)."""
        return None if self.umask is None else self.umask[-3:]


def parse_session(lines: list[str]) -> Session:
    values = dict(line.split("\t", 1) for line in lines if "\t" in line)
    return Session(values.get("umask"), values.get("process", "").strip())


register_section("access-session", SESSION_COMMAND, parse_session)
