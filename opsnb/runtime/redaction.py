"""Text a runbook draws, scrubbed of its target's secrets.

A notebook's text (outputs, tables, the record) is redacted whenever the engine writes it,
but a chart is pixels: a secret in a title, a category or a legend label (an error type
quoting a connection string, say) would be drawn into the PNG, out of the redactor's reach.
The session (``Runbook``) installs its target's redactor here; charts pass every label
through ``text`` before drawing it.
"""

from __future__ import annotations

from ..secrets import Redactor

_redactor: Redactor | None = None


def use(redactor: Redactor | None) -> None:
    """Scrub drawn text with ``redactor`` from now on (None: draw text as it is)."""
    global _redactor
    _redactor = redactor


def text(value: object) -> str:
    value = str(value)
    return _redactor.text(value) if _redactor is not None else value
