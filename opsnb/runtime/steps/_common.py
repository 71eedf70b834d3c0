"""Helpers shared by the step modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..show import display as _display  # noqa: F401  (used by the step modules)

Marks = Sequence[tuple[Any, str]]
