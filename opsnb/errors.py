"""Every error opsnb raises on purpose.

    OpsnbError                      root; ``exit_code`` is what the CLI exits with
    ├── UsageError                  bad input found before anything runs (exit 2)
    │   ├── ConfigError             a config file or target definition is wrong
    │   ├── UnknownTargetError      no target by that name
    │   ├── UnknownRunbookError     no runbook by that name or path
    │   ├── ParameterError          a parameter the runbook does not declare, or a bad value
    │   ├── SecretError             a secret reference cannot be resolved
    │   └── PolicyError             --apply asked for on a target whose policy forbids it
    ├── LimitExceeded (ValueError)  a step would touch more than the target's policy allows
    ├── BackendUnavailable          a backend is down, slow or answered with an error;
    │                               a check becomes ``unavailable`` and the runbook goes on
    └── RunFailed                   a cell failed unexpectedly (exit 1); the record is written

Each class keeps its context as attributes so callers never parse messages.
"""

from __future__ import annotations


class OpsnbError(Exception):
    """Base of every error opsnb raises on purpose."""

    exit_code = 1


class UsageError(OpsnbError):
    """The command line, a config file or a parameter is wrong; nothing has run."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration file or a target definition is invalid."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class UnknownTargetError(UsageError):
    """No target has that name."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"unknown target {name!r}; known targets: {', '.join(sorted(known)) or 'none'}"
            " (targets are defined in the config file, see `opsnb targets`)"
        )


class UnknownRunbookError(UsageError):
    """No runbook has that name, and no notebook exists at that path."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"unknown runbook {name!r}; available: {', '.join(sorted(known)) or 'none'}"
            " (or give a path to an .ipynb file)"
        )


class ParameterError(UsageError):
    """A parameter is not declared by the runbook, or its value has the wrong type."""

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        self.parameter = parameter
        super().__init__(message)


class SecretError(UsageError):
    """A secret reference (an environment variable or a file) cannot be resolved."""

    def __init__(self, message: str, *, reference: str | None = None) -> None:
        self.reference = reference
        super().__init__(message)


class PolicyError(UsageError):
    """An action was asked for that the target's policy does not allow."""


class LimitExceeded(OpsnbError, ValueError):
    """A mutating step would touch more than the target's policy allows; nothing changed."""


class BackendUnavailable(OpsnbError):
    """A backend could not answer: refused, timed out, or returned an error status."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(f"{backend} unavailable: {reason}")


class RunFailed(OpsnbError):
    """A runbook cell failed unexpectedly. The partial record has been written."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        run_dir: str | None = None,
        cell_index: int | None = None,
        ename: str | None = None,
        evalue: str | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.cell_index = cell_index
        self.ename = ename
        self.evalue = evalue
        super().__init__(message)
