"""The execution engine: how a runbook notebook runs and what a run leaves behind.

``run.py`` holds the pipeline; ``kernels.py`` the warm kernels. Names are resolved lazily so
that ``opsnb.engine.kernels`` can be imported (and a kernel launched) before the heavier
notebook libraries are loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import Prepared, RunRequest, RunResult, execute, prepare, run_runbook

__all__ = ["Prepared", "RunRequest", "RunResult", "execute", "prepare", "run_runbook"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
