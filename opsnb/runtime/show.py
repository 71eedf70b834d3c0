"""Showing tables and text from runbook steps: rich output in a notebook, plain text elsewhere."""

from __future__ import annotations

from typing import Any


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return False
    return get_ipython() is not None


def display(obj: Any) -> None:
    """A DataFrame as a table (or any object as its rich repr); printed outside a kernel."""
    if not _in_notebook():
        print(obj)
        return
    from IPython.display import display as ipython_display

    ipython_display(obj)


def markdown(text: str) -> None:
    """Markdown rendered in a notebook; the raw text elsewhere. See ``without_html``."""
    if not _in_notebook():
        print(text)
        return
    from IPython.display import Markdown
    from IPython.display import display as ipython_display

    ipython_display(Markdown(without_html(text)))


def without_html(text: str) -> str:
    """Markdown whose raw HTML shows as text: Markdown passes tags through to the notebook
    and its HTML page, and these texts carry parameters (a maintenance reason) and measured
    values, so every "<" is escaped. (Not for code spans, which would show "&lt;".)"""
    return text.replace("<", "&lt;")
