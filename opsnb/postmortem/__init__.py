"""Postmortems in the Blameless Postmortem Template's structure, from an incident's record
(``opsnb postmortem INC-ID``; the folder it writes is described in ``build``).

    from opsnb.postmortem import generate
    done = generate("INC-0001", root="incidents", out="postmortems/INC-0001")
    done.markdown, done.html, done.impact.failed_requests

The modules, one job each:

    gather      the incident, its timeline, its runs, the window's metrics
    impact      impact figures (failed requests, SLOs, error budget) and detection figures
    phases      the timeline's rows and the gantt chart's phases (mermaid)
    charts      the postmortem's own charts (matplotlib PNG)
    appendix    the runs' notebooks and charts, supporting data, checklists
    sections    the template's sections, header to response
    followup    the template's sections, recovery to sign-off
    document    the blocks both renderers share
    render_md   Markdown (the editable source)
    render_html one self-contained HTML page
    merge       keeping people's free text on regeneration
    build       the postmortem folder
    cli         ``opsnb postmortem``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .build import Postmortem, generate

__all__ = ["Postmortem", "generate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import build

        return getattr(build, name)
    raise AttributeError(name)
