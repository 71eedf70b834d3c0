"""Generate the demo target's recorded incidents (``opsnb-snapshot/1``).

One folder per service is written under ``opsnb/demo/incidents`` (see docs/architecture.md,
"Snapshot format"):

``payments`` (2025-01-15, :mod:`.payments`)
    Database connection pool exhaustion under a 3x traffic spike; the blameless postmortem
    template's example, its appendix figures reproduced exactly.

``catalog`` (2025-03-04, :mod:`.catalog`)
    A bad deployment: revision 12 rolls out at 09:42 UTC and ``/api/products`` fails.

The output is deterministic (seeded RNGs, fixed instants, no wall clock), so regenerating
gives byte-identical files::

    python -m opsnb.demo.generate [--out DIR]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from opsnb.config import DEMO_SNAPSHOTS

from .catalog import build_catalog
from .payments import build_payments
from .snapshot import Snapshot

BUILDERS: dict[str, Callable[[], Snapshot]] = {"payments": build_payments, "catalog": build_catalog}


def build(out: Path = DEMO_SNAPSHOTS) -> list[Path]:
    """Write every incident under ``out/<service>/`` (replacing those folders)."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for builder in BUILDERS.values():
        written.extend(builder().write(out))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m opsnb.demo.generate",
        description="Regenerate the demo target's recorded incidents (deterministic).",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEMO_SNAPSHOTS,
        help=f"folder of snapshots (default: {DEMO_SNAPSHOTS})",
    )
    args = parser.parse_args(argv)
    written = build(args.out)
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} files ({total / 1024:.0f} KiB) under {args.out}")
    return 0


__all__ = ["BUILDERS", "build", "main"]
