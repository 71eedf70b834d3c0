"""Runbook discovery and the typed parameters a runbook declares.

A runbook declares its parameters in the cell tagged ``parameters``, one per line::

    service: str = ""          # service name; empty means the target's default service
    window_minutes: int = 60   # how far back to look

The annotation (or the default's type) is the parameter's type and the trailing comment
its help. papermill injects values after this cell, so the notebook stays a plain
papermill notebook; opsnb adds validation and help on top.
"""

from __future__ import annotations

import ast
import functools
import os
import threading
import tokenize
from dataclasses import dataclass
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any

import nbformat

from .errors import ParameterError, UnknownRunbookError, UsageError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
# Parameters every runbook must declare.
REQUIRED = ("target", "service")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # one of TYPES
    default: Any
    help: str

    @property
    def is_time(self) -> bool:
        """A ``str`` parameter named ``*_at`` holds an ISO 8601 time (or nothing), checked
        before the run starts; the notebook still receives the string."""
        return self.type == "str" and self.name.endswith("_at")

    def convert(self, raw: Any) -> Any:
        """Turn a command-line string (or a value) into this parameter's type."""
        if not isinstance(raw, str):
            if self.type == "float" and isinstance(raw, int) and not isinstance(raw, bool):
                return float(raw)
            if isinstance(raw, TYPES[self.type]) and not (
                self.type in ("int", "float") and isinstance(raw, bool)
            ):
                return raw
            raise ParameterError(
                f"parameter {self.name!r} must be {self.type}, not {type(raw).__name__}",
                parameter=self.name,
            )
        try:
            if self.type == "bool":
                lowered = raw.strip().lower()
                if lowered in ("true", "yes", "1", "on"):
                    return True
                if lowered in ("false", "no", "0", "off"):
                    return False
                raise ValueError(raw)
            value = TYPES[self.type](raw)
            if self.is_time and value:
                datetime.fromisoformat(value)  # raises ValueError for anything else
            return value
        except ValueError:
            if self.is_time:
                raise ParameterError(
                    f"parameter {self.name!r} expects an ISO 8601 time such as "
                    f"2025-01-15T14:20:00Z, got {raw!r}",
                    parameter=self.name,
                ) from None
            raise ParameterError(
                f"parameter {self.name!r} expects {self.type}, got {raw!r}", parameter=self.name
            ) from None


@dataclass(frozen=True)
class Runbook:
    name: str
    path: Path
    description: str
    parameters: dict[str, Parameter]

    def validate(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check names and types of the given parameters; return them converted."""
        out: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in self.parameters:
                raise ParameterError(
                    f"runbook {self.name!r} has no parameter {name!r}; it declares: "
                    f"{', '.join(self.parameters)} (see `opsnb run {self.name} --help`)",
                    parameter=name,
                )
            out[name] = self.parameters[name].convert(raw)
        return out


def runbook_dirs() -> list[Path]:
    """Where runbook names are looked up: $OPSNB_RUNBOOKS, ./runbooks, the project's runbooks/."""
    dirs = [Path(p) for p in os.environ.get("OPSNB_RUNBOOKS", "").split(os.pathsep) if p]
    dirs += [Path.cwd() / "runbooks", PACKAGE_ROOT / "runbooks"]
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and (real := _real(d)) not in seen:
            seen.append(real)
    return seen


@functools.lru_cache(maxsize=64)
def _real(folder: Path) -> Path:
    # resolving walks every component with lstat/readlink; folders do not move under a
    # running process often enough to pay that on every lookup
    return folder.resolve()


def available() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in runbook_dirs():
        for path in sorted(d.glob("*.ipynb")):
            found.setdefault(path.stem, path)
    return found


def find(name_or_path: str) -> Runbook:
    """Resolve a runbook name from the runbook folders, or a path to a notebook."""
    path = Path(name_or_path)
    if path.suffix == ".ipynb" or os.sep in name_or_path:
        if not path.is_file():
            raise UnknownRunbookError(name_or_path, list(available()))
        return load(path)
    known = available()
    if name_or_path not in known:
        raise UnknownRunbookError(name_or_path, list(known))
    return load(known[name_or_path])


# Runbooks already read, by path, with the (mtime, size) they were read at: opsnb serve looks
# up a runbook for every alert it receives, and reading and validating a notebook costs
# milliseconds that an alert storm multiplies.
_loaded: dict[Path, tuple[tuple[int, int], Runbook]] = {}
_loaded_lock = threading.Lock()


def load(path: Path) -> Runbook:
    """The runbook in the notebook at ``path``; read again only when the file changed."""
    try:
        stat = path.stat()
    except OSError:
        return _read(path)  # says what is wrong with the path
    version = (stat.st_mtime_ns, stat.st_size)
    with _loaded_lock:
        known = _loaded.get(path)
    if known is not None and known[0] == version:
        return known[1]
    runbook = _read(path)
    with _loaded_lock:
        _loaded[path] = (version, runbook)
    return runbook


def _read(path: Path) -> Runbook:
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for bad files
        raise UsageError(f"{path}: not a readable notebook ({exc})") from None
    cell = next(
        (
            c
            for c in nb.cells
            if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])
        ),
        None,
    )
    if cell is None:
        raise UsageError(f"{path}: no code cell tagged 'parameters'")
    params = parse_parameters(cell.source, where=str(path))
    missing = [p for p in REQUIRED if p not in params]
    if missing:
        raise UsageError(f"{path}: the parameters cell must declare {', '.join(missing)}")
    return Runbook(name=path.stem, path=path.resolve(), description=describe(nb), parameters=params)


def describe(nb: Any) -> str:
    meta = nb.metadata.get("opsnb", {})
    if meta.get("description"):
        return str(meta["description"])
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                text = line.strip().lstrip("#").strip()
                if text:
                    return text
    return ""


def parse_parameters(source: str, *, where: str) -> dict[str, Parameter]:
    """Read ``name: type = default  # help`` lines from a parameters cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise UsageError(f"{where}: parameters cell is not valid Python ({exc.msg})") from None
    comments = _line_comments(source)
    params: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, annotation, value_node = node.target.id, node.annotation, node.value
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name, annotation, value_node = node.targets[0].id, None, node.value
        else:
            continue
        try:
            default = ast.literal_eval(value_node) if value_node is not None else None
        except ValueError:
            raise UsageError(f"{where}: parameter {name!r} needs a literal default") from None
        # The annotation names the type; without one, the default's type does.
        type_name = ast.unparse(annotation) if annotation else type(default).__name__
        if type_name not in TYPES:
            raise UsageError(
                f"{where}: parameter {name!r} has type {type_name!r}; use one of {list(TYPES)}"
            )
        params[name] = Parameter(name, type_name, default, comments.get(node.lineno, ""))
    return params


def _line_comments(source: str) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except tokenize.TokenError:
        pass
    return out
