"""Which services a snapshot folder holds, read from the ``snapshot.json`` files alone.

Kept apart from ``snapshot.py`` so that validating a run's input does not import pandas.
"""

from __future__ import annotations

import json
from pathlib import Path


def services(root: str | Path) -> dict[str, Path]:
    """service name -> snapshot folder, for a snapshot or a folder of snapshots."""
    root = Path(root)
    if (root / "snapshot.json").is_file():
        folders = [root]
    elif root.is_dir():
        folders = sorted(p for p in root.iterdir() if (p / "snapshot.json").is_file())
    else:
        return {}
    found: dict[str, Path] = {}
    for folder in folders:
        try:
            meta = json.loads((folder / "snapshot.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("service"):
            found.setdefault(str(meta["service"]), folder)
    return found


def require(root: str | Path, service: str | None) -> Path:
    """The folder of ``service``'s snapshot; LookupError naming what is there otherwise."""
    root = Path(root)
    if not root.exists():
        raise LookupError(f"snapshot folder {root} does not exist")
    found = services(root)
    if not service:
        if len(found) == 1:
            return next(iter(found.values()))
        raise LookupError(
            f"name a service: {root} holds snapshots of {', '.join(sorted(found)) or 'none'}"
        )
    if service not in found:
        raise LookupError(
            f"no snapshot for service {service!r} in {root}; "
            f"available: {', '.join(sorted(found)) or 'none'}"
        )
    return found[service]
