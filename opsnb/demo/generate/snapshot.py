"""A snapshot being built: its files as text, the header and dependency results, writing."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from opsnb.config import DEFAULT_SLO

from .common import FORMAT, NAMESPACE, RATE_WINDOW, STEP, Json, iso


def dump(obj: Any) -> str:
    """JSON as every snapshot file but ``metrics.json`` is written: indented, UTF-8."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def dump_metrics(all_series: list[Json]) -> str:
    """``metrics.json``: one compact series per line."""
    rows = ",\n".join("  " + json.dumps(s, separators=(",", ":")) for s in all_series)
    return '{"series": [\n' + rows + "\n]}\n"


@dataclass(frozen=True)
class Dependency:
    """A dependency the snapshot records as checked and healthy."""

    url: str
    detail: str
    latency_ms: float

    def result(self) -> Json:
        return {
            "url": self.url,
            "status": "ok",
            "detail": self.detail,
            "latency_ms": self.latency_ms,
        }


@dataclass
class Snapshot:
    """One service's snapshot folder: relative path -> file text."""

    service: str
    files: dict[str, str] = field(default_factory=dict)

    def add(self, rel: str, text: str) -> None:
        self.files[rel] = text

    def add_json(self, rel: str, obj: Any) -> None:
        self.add(rel, dump(obj))

    def add_header(
        self,
        *,
        start: datetime,
        end: datetime,
        now: datetime,
        description: str,
        dependencies: dict[str, Dependency],
    ) -> None:
        """``snapshot.json`` and ``dependencies.json``."""
        self.add_json(
            "dependencies.json", {name: dep.result() for name, dep in dependencies.items()}
        )
        self.add_json(
            "snapshot.json",
            {
                "format": FORMAT,
                "service": self.service,
                "namespace": NAMESPACE,
                "selector": f"app={self.service}",
                "deployment": self.service,
                "container": self.service,
                "start": iso(start),
                "end": iso(end),
                "now": iso(now),
                "step_seconds": STEP,
                "rate_window": RATE_WINDOW,
                "description": description,
                "slo": dict(DEFAULT_SLO),
                "dependencies": {name: dep.url for name, dep in dependencies.items()},
            },
        )

    def write(self, out: Path) -> list[Path]:
        """Replace ``out/<service>/`` with this snapshot's files; return them in write order."""
        folder = out / self.service
        if folder.exists():
            shutil.rmtree(folder)
        written = []
        for rel in sorted(self.files):
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.files[rel], encoding="utf-8", newline="\n")
            written.append(path)
        return written
