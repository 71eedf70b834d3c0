"""The old name of :mod:`opsnb.demo.generate`: ``python -m opsnb.demo.build_incidents``."""

from __future__ import annotations

from opsnb.demo.generate import build, main

__all__ = ["build", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
