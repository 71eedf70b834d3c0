"""The execution engine: how a runbook notebook runs and what a run leaves behind."""

from .run import Prepared, RunRequest, RunResult, execute, prepare, run_runbook

__all__ = ["Prepared", "RunRequest", "RunResult", "execute", "prepare", "run_runbook"]
