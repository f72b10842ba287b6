"""Driving Ansible: run a playbook through ansible-runner (run), read what it did (events),
and an optional live view of it (progress) that callers attach through on_event."""

from cityguard.ansible.events import HostStats, PlaybookResult, TaskResult
from cityguard.ansible.run import AnsibleError, PlaybookRequest, run_playbook

__all__ = [
    "AnsibleError",
    "HostStats",
    "PlaybookRequest",
    "PlaybookResult",
    "TaskResult",
    "run_playbook",
]
