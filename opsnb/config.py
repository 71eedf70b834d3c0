"""Targets: where a service runs and how opsnb reaches its backends.

Config files are YAML, read in this order (later files override targets of the same name):

1. ``<config dir>/config.yaml`` where the config dir is ``$OPSNB_HOME``, else
   ``$XDG_CONFIG_HOME/opsnb``, else ``~/.config/opsnb``;
2. ``<config dir>/targets.d/*.yaml`` in name order (``opsnb lab`` writes ``lab.yaml`` here);
3. ``./opsnb.yaml`` in the working directory;
4. the file named by ``$OPSNB_CONFIG`` (it must exist).

Environment variables override single settings of a target:
``OPSNB_TARGET_<TARGET>_<SECTION>_<KEY>``, e.g. ``OPSNB_TARGET_LAB_PROMETHEUS_URL``
(target names upper-cased, ``-`` written as ``_``).

The built-in target ``demo`` needs no config: it serves the recorded incidents shipped
with opsnb from the snapshot format.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, UnknownTargetError
from .secrets import Redactor, SecretRef

DEMO_SNAPSHOTS = Path(__file__).parent / "demo" / "incidents"

DEFAULT_SLO = {
    "availability": 0.999,  # 30-day rolling
    "latency_p99_seconds": 0.5,  # 5-minute window
    "error_rate": 0.001,  # 5-minute window
    "alert_error_rate": 0.01,  # the HighErrorRate alert threshold
}


@dataclass(frozen=True)
class ServiceConfig:
    """Per-service facts: how to find its pods and what its SLOs are."""

    name: str
    selector: str
    deployment: str
    container: str
    slo: dict[str, float]
    dependencies: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KubernetesConfig:
    namespace: str = "default"
    context: str | None = None
    kubeconfig: str | None = None
    server: str | None = None
    token: SecretRef | None = None
    timeout: float = 5.0


@dataclass(frozen=True)
class PrometheusConfig:
    url: str
    rate_window: str = "5m"
    timeout: float = 5.0


@dataclass(frozen=True)
class PostgresConfig:
    host: str = "127.0.0.1"
    port: int = 5432
    dbname: str = "postgres"
    user: str = "postgres"
    password: SecretRef | None = None
    dsn: SecretRef | None = None
    connect_timeout: float = 3.0


@dataclass(frozen=True)
class RedisConfig:
    url: str = "redis://127.0.0.1:6379/0"
    password: SecretRef | None = None
    timeout: float = 3.0


@dataclass(frozen=True)
class Policy:
    """What a target lets runbooks change."""

    allow_apply: bool = False  # may `opsnb run --apply` mutate this target at all?
    automatic_actions: tuple[str, ...] = ()  # runbooks allowed to apply in automated runs
    max_replicas: int = 20
    max_pods_per_action: int = 10  # blast radius: pods one step may delete or restart
    max_backends_per_action: int = 5  # PostgreSQL backends one step may terminate
    max_keys_per_action: int = 10_000  # Redis keys one step may delete


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "live" or "snapshot"
    services: dict[str, ServiceConfig]
    default_service: str | None = None
    kubernetes: KubernetesConfig | None = None
    prometheus: PrometheusConfig | None = None
    alertmanager_url: str | None = None
    postgres: PostgresConfig | None = None
    redis: RedisConfig | None = None
    snapshot: Path | None = None
    policy: Policy = Policy()
    source: str = "built-in"

    def service(self, name: str | None) -> ServiceConfig:
        """Return a service's config; unknown services get conventional defaults."""
        name = name or self.default_service
        if not name:
            raise ConfigError(f"target {self.name!r} has no default_service; pass -p service NAME")
        if name in self.services:
            return self.services[name]
        return ServiceConfig(
            name=name, selector=f"app={name}", deployment=name, container=name, slo=DEFAULT_SLO
        )

    def secret_refs(self) -> list[SecretRef]:
        refs = [
            self.kubernetes and self.kubernetes.token,
            self.postgres and self.postgres.password,
            self.postgres and self.postgres.dsn,
            self.redis and self.redis.password,
        ]
        return [r for r in refs if r]

    def redactor(self) -> Redactor:
        """A redactor that knows every secret value this target can resolve."""
        return Redactor(v for v in (r.try_resolve() for r in self.secret_refs()) if v)


# --- loading -----------------------------------------------------------------------------


def config_dir() -> Path:
    if os.environ.get("OPSNB_HOME"):
        return Path(os.environ["OPSNB_HOME"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "opsnb"


def config_files() -> list[Path]:
    """The config files that exist, in the order they are applied."""
    home = config_dir()
    files = [home / "config.yaml", *sorted((home / "targets.d").glob("*.yaml"))]
    files.append(Path.cwd() / "opsnb.yaml")
    found = [f for f in files if f.is_file()]
    explicit = os.environ.get("OPSNB_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError("OPSNB_CONFIG names a file that does not exist", path=str(path))
        found.append(path)
    return found


def load_targets() -> dict[str, Target]:
    """All targets: the built-in demo plus every target in the config files."""
    raw: dict[str, tuple[Mapping[str, Any], str]] = {}
    for path in config_files():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML: {exc}", path=str(path)) from None
        if not isinstance(data, Mapping):
            raise ConfigError(
                "the top level must be a mapping with a 'targets' key", path=str(path)
            )
        targets = data.get("targets", {})
        if not isinstance(targets, Mapping):
            raise ConfigError("'targets' must be a mapping of name to target", path=str(path))
        for name, spec in targets.items():
            raw[str(name)] = (spec, str(path))
    result = {"demo": demo_target()}
    for name, (spec, source) in raw.items():
        spec = apply_env_overrides(name, spec)
        result[name] = parse_target(name, spec, source=source)
    return result


def get_target(name: str) -> Target:
    targets = load_targets()
    if name not in targets:
        raise UnknownTargetError(name, list(targets))
    return targets[name]


def demo_target() -> Target:
    return Target(
        name="demo",
        kind="snapshot",
        services={},
        default_service="payments",
        snapshot=DEMO_SNAPSHOTS,
        policy=Policy(allow_apply=False),
    )


def apply_env_overrides(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    prefix = "OPSNB_TARGET_" + name.upper().replace("-", "_") + "_"
    out: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in spec.items()}
    for key, value in os.environ.items():
        if not key.startswith(prefix):
            continue
        section, _, setting = key[len(prefix) :].lower().partition("_")
        if not setting:
            out[section] = value
            continue
        current = out.get(section)
        if current is not None and not isinstance(current, dict):
            raise ConfigError(f"{key}: target {name!r} setting {section!r} is not a section")
        out.setdefault(section, {})[setting] = value
    return out


def parse_target(name: str, spec: Mapping[str, Any], *, source: str) -> Target:
    where = f"target {name!r}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a mapping", path=source)
    known = {
        "kubernetes", "prometheus", "alertmanager", "postgres", "redis", "snapshot",
        "services", "default_service", "policy", "description",
    }  # fmt: skip
    unknown = set(spec) - known
    if unknown:
        raise ConfigError(
            f"{where} has unknown settings {sorted(unknown)}; allowed: {sorted(known)}", path=source
        )
    try:
        snapshot = spec.get("snapshot")
        services = {
            str(sname): parse_service(str(sname), sspec or {}, where)
            for sname, sspec in (_section(spec, "services", where) or {}).items()
        }
        return Target(
            name=name,
            kind="snapshot" if snapshot else "live",
            services=services,
            default_service=spec.get("default_service") or (next(iter(services), None)),
            kubernetes=_kubernetes(_section(spec, "kubernetes", where), where),
            prometheus=_prometheus(_section(spec, "prometheus", where), where),
            alertmanager_url=(_section(spec, "alertmanager", where) or {}).get("url"),
            postgres=_postgres(_section(spec, "postgres", where), where),
            redis=_redis(_section(spec, "redis", where), where),
            snapshot=Path(snapshot).expanduser() if snapshot else None,
            policy=_policy(_section(spec, "policy", where) or {}, where),
            source=source,
        )
    except ConfigError as exc:
        if exc.path is None:
            raise ConfigError(str(exc), path=source) from None
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}", path=source) from None


def _section(spec: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: '{key}' must be a mapping")
    return dict(value)


def _secret(section: Mapping[str, Any], key: str, where: str) -> SecretRef | None:
    if section.get(key) in (None, ""):
        return None
    return SecretRef.parse(section[key], where=f"{where}: {key}")


def _kubernetes(s: dict[str, Any] | None, where: str) -> KubernetesConfig | None:
    if s is None:
        return None
    w = f"{where} kubernetes"
    return KubernetesConfig(
        namespace=str(s.get("namespace", "default")),
        context=s.get("context"),
        kubeconfig=s.get("kubeconfig"),
        server=s.get("server"),
        token=_secret(s, "token", w),
        timeout=float(s.get("timeout", 5.0)),
    )


def _prometheus(s: dict[str, Any] | None, where: str) -> PrometheusConfig | None:
    if s is None:
        return None
    if not s.get("url"):
        raise ConfigError(f"{where}: prometheus needs a url")
    return PrometheusConfig(
        url=str(s["url"]).rstrip("/"),
        rate_window=str(s.get("rate_window", "5m")),
        timeout=float(s.get("timeout", 5.0)),
    )


def _postgres(s: dict[str, Any] | None, where: str) -> PostgresConfig | None:
    if s is None:
        return None
    w = f"{where} postgres"
    return PostgresConfig(
        host=str(s.get("host", "127.0.0.1")),
        port=int(s.get("port", 5432)),
        dbname=str(s.get("dbname", "postgres")),
        user=str(s.get("user", "postgres")),
        password=_secret(s, "password", w),
        dsn=_secret(s, "dsn", w),
        connect_timeout=float(s.get("connect_timeout", 3.0)),
    )


def _redis(s: dict[str, Any] | None, where: str) -> RedisConfig | None:
    if s is None:
        return None
    url = str(s.get("url", "redis://127.0.0.1:6379/0"))
    if "@" in url.split("//", 1)[-1]:
        raise ConfigError(
            f"{where}: redis url must not carry a password; use password: {{env: NAME}}"
        )
    return RedisConfig(
        url=url,
        password=_secret(s, "password", f"{where} redis"),
        timeout=float(s.get("timeout", 3.0)),
    )


def _policy(s: dict[str, Any], where: str) -> Policy:
    auto = s.get("automatic_actions", ())
    if isinstance(auto, str):
        auto = [auto]
    return Policy(
        allow_apply=_bool(s.get("allow_apply", False), f"{where} policy.allow_apply"),
        automatic_actions=tuple(str(a) for a in auto),
        max_replicas=int(s.get("max_replicas", 20)),
        max_pods_per_action=int(s.get("max_pods_per_action", 10)),
        max_backends_per_action=int(s.get("max_backends_per_action", 5)),
        max_keys_per_action=int(s.get("max_keys_per_action", 10_000)),
    )


def parse_service(name: str, s: Mapping[str, Any], where: str) -> ServiceConfig:
    if not isinstance(s, Mapping):
        raise ConfigError(f"{where}: service {name!r} must be a mapping")
    slo = dict(DEFAULT_SLO)
    for key, value in (s.get("slo") or {}).items():
        if key not in DEFAULT_SLO:
            raise ConfigError(
                f"{where}: service {name!r} slo key {key!r}; known: {list(DEFAULT_SLO)}"
            )
        slo[key] = float(value)
    return ServiceConfig(
        name=name,
        selector=str(s.get("selector", f"app={name}")),
        deployment=str(s.get("deployment", name)),
        container=str(s.get("container", name)),
        slo=slo,
        dependencies={str(k): str(v) for k, v in (s.get("dependencies") or {}).items()},
    )


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.lower() in ("true", "yes", "1")
    raise ConfigError(f"{where} must be true or false, not {value!r}")
