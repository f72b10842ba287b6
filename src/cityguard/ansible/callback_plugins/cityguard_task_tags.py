# mypy: ignore-errors
"""Ansible callback, loaded for cityguard's runs only: records each task's effective tags.

Runner 2.4 events carry no task tags, so this writes one JSON line per task started,
``[task uuid, [tags]]`` (its own tags plus those of its blocks, role and play), to the file named
by CITYGUARD_TASK_TAGS_FILE. It ships with cityguard rather than being written to a temporary
directory per run, so a run that is killed leaves nothing behind.
"""

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "cityguard_task_tags"
    CALLBACK_NEEDS_ENABLED = False

    def v2_playbook_on_task_start(self, task, is_conditional=False):
        path = os.environ.get("CITYGUARD_TASK_TAGS_FILE")
        if not path:
            return  # a run outside cityguard
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps([str(task._uuid), sorted({str(t) for t in task.tags})]) + "\n")

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start
