"""The ``serve:`` section of the config files, with environment overrides.

Every setting, its type, default and meaning is in ``SETTINGS``: validation, ``opsnb serve
--help-config`` and the README table all come from it. Precedence, lowest first: the defaults,
the ``serve:`` sections of the config files (in the order of ``opsnb.config.config_files()``,
a later file overriding single keys), ``OPSNB_SERVE_<KEY>`` environment variables (scalar
settings only), then command-line options.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import config_dir, config_files
from ..errors import ConfigError
from ..secrets import SecretRef

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Setting:
    key: str
    kind: str  # str, int, float, bool, path, secret, mapping, routes, webhooks
    default: Any
    meaning: str


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "str", "127.0.0.1", "address to listen on"),
    Setting("port", "int", 9095, "TCP port to listen on"),
    Setting(
        "data_dir",
        "path",
        None,
        "where the database (`serve.db`) and run folders (`runs/`) live; "
        "default `<config dir>/serve`",
    ),
    Setting(
        "token",
        "secret",
        {"env": "OPSNB_SERVE_TOKEN"},
        "secret reference to the bearer token Alertmanager sends "
        "(`http_config.authorization.credentials`); the service does not start without it",
    ),
    Setting(
        "public_url",
        "str",
        "",
        "base URL of the service in notification links; default `http://HOST:PORT`",
    ),
    Setting(
        "default_target",
        "str",
        "",
        "target for alerts no `target_routes` entry matches; "
        "empty: such alerts are recorded as unrouted",
    ),
    Setting(
        "target_routes",
        "routes",
        [],
        "`[{match: {LABEL: VALUE, ...}, target: NAME}]`: the first entry whose labels all "
        "equal the alert's picks the target",
    ),
    Setting(
        "alertname_runbooks",
        "mapping",
        {},
        "`{ALERTNAME: RUNBOOK}` for alerts with neither a `runbook` label nor a "
        "`runbook_url` annotation naming a runbook",
    ),
    Setting(
        "repeat_interval",
        "float",
        3600.0,
        "seconds: one diagnosis per alert fingerprint per interval; repeats are recorded",
    ),
    Setting(
        "still_firing_after",
        "float",
        1800.0,
        "seconds after a diagnosis at which an alert that has not resolved is diagnosed "
        "afresh (the run records why); 0 turns this off",
    ),
    Setting("max_rediagnoses", "int", 3, "fresh diagnoses per firing alert, at most"),
    Setting(
        "resolution_runbook",
        "str",
        "verify-resolution",
        "runbook run when an alert resolves; empty turns this off",
    ),
    Setting(
        "resolution_settle_seconds", "int", 0, "`settle_seconds` passed to the resolution runbook"
    ),
    Setting("concurrency", "int", 1, "runs executing at once"),
    Setting("queue_size", "int", 100, "queued runs at most; past it a webhook gets 503"),
    Setting("pool_size", "int", 2, "warm kernels kept ready"),
    Setting(
        "chart_renderer",
        "bool",
        True,
        "draw runbooks' charts in a process beside the kernels, on another core, while the "
        "runbook goes on",
    ),
    Setting("run_deadline", "float", 300.0, "seconds one run may take"),
    Setting("cell_timeout", "float", 120.0, "seconds one cell may take"),
    Setting(
        "max_attempts",
        "int",
        2,
        "times a run is started, counting restarts after a crash; then it is `failed`",
    ),
    Setting("max_body_bytes", "int", 1_048_576, "largest webhook body accepted (413 past it)"),
    Setting(
        "preload",
        "str",
        "opsnb.runtime.steps, opsnb.runtime.playbook, opsnb.backends.kubernetes, "
        "opsnb.backends.postgres, opsnb.backends.redis, opsnb.backends.logs, "
        "opsnb.backends.snapshot, opsnb.backends.snapshot_stores, kubernetes.client, httpx, "
        "psycopg, redis",
        "modules each warm kernel imports besides pandas, matplotlib and opsnb.runtime (it "
        "also draws a throwaway chart, so the run's first chart is not its slowest)",
    ),
    Setting(
        "notify",
        "webhooks",
        [],
        "Slack-compatible incoming webhooks: `[{url: URL or {env: NAME} or {file: PATH}, "
        "name: NAME}]`",
    ),
    Setting("notify_attempts", "int", 5, "tries per notification before it is `failed`"),
    Setting("notify_backoff", "float", 2.0, "seconds before the first retry; doubles each time"),
    Setting("notify_timeout", "float", 5.0, "seconds per notification request"),
)
BY_KEY = {s.key: s for s in SETTINGS}
SCALAR = ("str", "int", "float", "bool", "path", "secret")


@dataclass(frozen=True)
class TargetRoute:
    match: dict[str, str]
    target: str


@dataclass(frozen=True)
class Webhook:
    name: str
    url: str | None = None  # a literal URL (e.g. a local receiver)
    ref: SecretRef | None = None  # or a secret reference to it (a Slack URL is a secret)

    def resolve(self) -> str:
        return self.url if self.url is not None else self.ref.resolve()  # type: ignore[union-attr]


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 9095
    data_dir: Path = field(default_factory=lambda: config_dir() / "serve")
    token: SecretRef = SecretRef(env="OPSNB_SERVE_TOKEN")
    public_url: str = ""
    default_target: str = ""
    target_routes: tuple[TargetRoute, ...] = ()
    alertname_runbooks: dict[str, str] = field(default_factory=dict)
    repeat_interval: float = 3600.0
    still_firing_after: float = 1800.0
    max_rediagnoses: int = 3
    resolution_runbook: str = "verify-resolution"
    resolution_settle_seconds: int = 0
    concurrency: int = 1
    queue_size: int = 100
    pool_size: int = 2
    chart_renderer: bool = True
    run_deadline: float = 300.0
    cell_timeout: float = 120.0
    max_attempts: int = 2
    max_body_bytes: int = 1_048_576
    preload: str = BY_KEY["preload"].default
    notify: tuple[Webhook, ...] = ()
    notify_attempts: int = 5
    notify_backoff: float = 2.0
    notify_timeout: float = 5.0

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "serve.db"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def preload_code(self) -> str:
        from ..engine.kernels import PRELOAD

        imports = "".join(f"import {m}\n" for m in _modules(self.preload))
        return PRELOAD + imports + "opsnb.runtime.charts.rehearse()\n"


# --- parsing ---------------------------------------------------------------------------------


def _num(cast: Callable[[Any], Any], low: float) -> Callable[[Any, str], Any]:
    def parse(value: Any, where: str) -> Any:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        try:
            out = cast(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, not {value!r}") from None
        if out < low:
            raise ConfigError(f"{where} must be at least {low}, not {value!r}")
        return out

    return parse


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ConfigError(f"{where} must be a string, not {value!r}")
    return str(value)


def _path(value: Any, where: str) -> Path:
    if isinstance(value, os.PathLike):
        return Path(value).expanduser()
    return Path(_str(value, where)).expanduser()


def _secret(value: Any, where: str) -> SecretRef:
    return SecretRef.parse(value, where=where)


def _mapping(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of alertname to runbook")
    out = {}
    for k, v in value.items():
        if not isinstance(v, str) or not SAFE_NAME.match(v):
            raise ConfigError(f"{where}: {k!r} must name a runbook, not {v!r}")
        out[str(k)] = v
    return out


def _routes(value: Any, where: str) -> tuple[TargetRoute, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of {{match: {{...}}, target: NAME}}")
    out = []
    for i, item in enumerate(value):
        w = f"{where}[{i}]"
        if not isinstance(item, Mapping) or set(item) - {"match", "target"}:
            raise ConfigError(f"{w} must be {{match: {{LABEL: VALUE}}, target: NAME}}")
        match = item.get("match") or {}
        if not isinstance(match, Mapping):
            raise ConfigError(f"{w}.match must be a mapping of label to value")
        out.append(
            TargetRoute({str(k): str(v) for k, v in match.items()}, _str(item.get("target"), w))
        )
    return tuple(out)


def _webhooks(value: Any, where: str) -> tuple[Webhook, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of {{url: ..., name: ...}}")
    out = []
    for i, item in enumerate(value):
        w = f"{where}[{i}]"
        if isinstance(item, str | Mapping) and not (isinstance(item, Mapping) and "url" in item):
            item = {"url": item}
        if not isinstance(item, Mapping) or set(item) - {"url", "name"}:
            raise ConfigError(f"{w} must be {{url: URL or secret reference, name: NAME}}")
        raw, name = item["url"], str(item.get("name") or f"webhook-{i + 1}")
        if isinstance(raw, str) and raw.startswith(("http://", "https://")):
            out.append(Webhook(name=name, url=raw))
        else:
            out.append(Webhook(name=name, ref=SecretRef.parse(raw, where=f"{w}.url")))
    return tuple(out)


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    raise ConfigError(f"{where} must be true or false, not {value!r}")


PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "str": _str,
    "int": _num(int, 0),
    "float": _num(float, 0.0),
    "bool": _bool,
    "path": _path,
    "secret": _secret,
    "mapping": _mapping,
    "routes": _routes,
    "webhooks": _webhooks,
}
POSITIVE = {"concurrency", "queue_size", "max_attempts", "max_body_bytes", "notify_attempts"}


def parse(raw: Mapping[str, Any], *, where: str = "serve") -> ServeSettings:
    """Validate a merged ``serve:`` mapping into settings; unknown keys are errors."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        setting = BY_KEY.get(str(key))
        if setting is None:
            raise ConfigError(f"{where}: unknown setting {key!r}; known: {', '.join(BY_KEY)}")
        if value is None:
            continue
        parsed = PARSERS[setting.kind](value, f"{where}.{key}")
        if key in POSITIVE and parsed < 1:
            raise ConfigError(f"{where}.{key} must be at least 1, not {value!r}")
        values[setting.key] = parsed
    if "preload" in values:
        _check_modules(values["preload"], f"{where}.preload")
    return ServeSettings(**values)


def _modules(listing: str) -> list[str]:
    """The module names of a ``preload`` listing (comma-separated)."""
    return [m.strip() for m in listing.split(",") if m.strip()]


def _check_modules(listing: str, where: str) -> None:
    """Every preload module must exist: a typo would otherwise cost each run its import."""
    import importlib.util

    for name in _modules(listing):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ConfigError(
                f"{where}: no module named {name!r} can be imported here; "
                "list importable modules, separated by commas"
            )


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``OPSNB_SERVE_<KEY>`` for scalar settings; a token override is a reference
    (``env:NAME`` or ``file:PATH``), never the token itself."""
    environ = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for setting in SETTINGS:
        name = "OPSNB_SERVE_" + setting.key.upper()
        if setting.kind in SCALAR and name in environ and setting.key != "token":
            out[setting.key] = environ[name]
    if "OPSNB_SERVE_TOKEN_REF" in environ:
        out["token"] = environ["OPSNB_SERVE_TOKEN_REF"]
    return out


def file_sections() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in config_files():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML: {exc}", path=str(path)) from None
        section = data.get("serve") if isinstance(data, Mapping) else None
        if section is None:
            continue
        if not isinstance(section, Mapping):
            raise ConfigError("'serve' must be a mapping of setting to value", path=str(path))
        merged.update(section)
    return merged


def load(overrides: Mapping[str, Any] | None = None) -> ServeSettings:
    """Defaults < config files < environment < ``overrides`` (command-line options)."""
    raw = {**file_sections(), **env_overrides()}
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return parse(raw)


def table() -> str:
    """The settings as a Markdown table (README and ``opsnb serve --help-config``)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = "`<config dir>/serve`" if s.key == "data_dir" else f"`{s.default!r}`"
        if s.kind == "secret":
            default = f"`{yaml.safe_dump(s.default, default_flow_style=True).strip()}`"
        rows.append(f"| `{s.key}` | {default} | {s.meaning} |")
    return "\n".join(rows)
