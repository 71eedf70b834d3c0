"""The action log: every mutating step, applied or not, appended as one JSON line.

Lines are appended under an exclusive lock so that a person's kernel and the alert
service can write to the same log without interleaving.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict
from pathlib import Path

from ..config import config_dir
from ..records import Action


def action_log_path() -> Path:
    return Path(os.environ.get("OPSNB_ACTION_LOG") or config_dir() / "actions.jsonl")


def append(action: Action, path: Path | None = None) -> Path:
    path = path or action_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(action), sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return path
