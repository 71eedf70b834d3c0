"""Helpers shared by the step modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Marks = Sequence[tuple[Any, str]]


def _display(obj: Any) -> None:
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover
        print(obj)
        return
    display(obj)
