"""What runbook cells import: ``from opsnb.runtime import open_runbook, charts``.

The session names load on first use, so that the engine can import the small modules here
(``chart_jobs``) without pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import CheckContext, Runbook, open_runbook

__all__ = ["CheckContext", "Runbook", "open_runbook"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import session

        return getattr(session, name)
    raise AttributeError(name)
