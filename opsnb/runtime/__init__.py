"""What runbook cells import: ``from opsnb.runtime import open_runbook, charts``."""

from .session import CheckContext, Runbook, open_runbook

__all__ = ["CheckContext", "Runbook", "open_runbook"]
