"""The incident playbook's severity model: SEV-1 to SEV-4 as data, and a classifier from
measured impact.

    from opsnb.severity import Impact, classify, response_targets
    result = classify(Impact(error_rate=0.163, ready_pods=6, desired_pods=6))
    result.label            # "SEV-2"
    result.reasons          # ("16.30% of requests failing (more than 10%)",)
    response_targets(2).rows()   # the playbook's response requirements table

Levels and their response requirements follow the playbook's "Severity Definitions".
Classification rules (defaults; the first level with a matching rule wins):

- **SEV-1** (complete outage affecting all users): no ready pod, or availability below 10%
  (nine requests in ten failing), or the service declared down.
- **SEV-2** (significant degradation): more than 10% of requests (the playbook's "users")
  failing, or the SLO breached (availability over the SLO period, 30 days, below its
  target) while the service shows any impact now, or at least 3 services affected. A
  breached SLO without impact now is no incident (SEV-4, and the reason says so).
- **SEV-3** (limited impact): errors at or above the SLO's error rate but 10% or less
  (intermittent errors), p99 latency at or over its SLO (performance degradation), some
  but not all pods ready, alerts firing for the service, or a dependency unavailable.
- **SEV-4** (minimal impact, no SLO breach): none of the above.

When neither the error rate nor the availability could be measured and nothing else points
higher, the level is SEV-3 (``unmeasured_level``): an unknown impact is not a minimal one.

An organisation adjusts thresholds and response targets in a ``severity:`` section of a YAML
file: ``$OPSNB_SEVERITY`` when set, else ``<config dir>/severity.yaml`` (see
:func:`load_policy`)::

    severity:
      thresholds:
        major_affected_share: 0.05     # SEV-2 from 5% of requests failing
      levels:
        SEV-2: {acknowledge: 10m, postmortem_within: 72h}
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

LEVELS = (1, 2, 3, 4)
POSTMORTEM = ("required", "optional", "no")


# --- definitions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseTargets:
    """A level's response requirements. Durations are minutes; None means not required."""

    acknowledge_minutes: int
    assemble_minutes: int | None = None  # time to assemble the team
    investigate_minutes: int | None = None  # time to investigate
    update_every_minutes: int | None = None  # status update frequency
    resolution: str | None = None  # expected resolution time, in words ("Next sprint")
    postmortem: str = "no"  # required | optional | no
    postmortem_within_minutes: int | None = None

    @property
    def postmortem_required(self) -> bool:
        return self.postmortem == "required"

    def rows(self) -> list[tuple[str, str]]:
        """The playbook's table: (requirement, target) in its words."""
        rows = [("Time to Acknowledge", duration_text(self.acknowledge_minutes))]
        if self.assemble_minutes is not None:
            rows.append(("Time to Assemble Team", duration_text(self.assemble_minutes)))
        if self.investigate_minutes is not None:
            rows.append(("Time to Investigate", duration_text(self.investigate_minutes)))
        if self.update_every_minutes is not None:
            every = self.update_every_minutes
            text = "Daily" if every == 1440 else f"Every {duration_text(every)}"
            rows.append(("Status Update Frequency", text))
        if self.resolution:
            rows.append(("Resolution Time", self.resolution))
        if self.postmortem == "required":
            within = self.postmortem_within_minutes
            text = "Yes" if within is None else f"Yes, within {duration_text(within)}"
        else:
            text = self.postmortem.capitalize()
        rows.append(("Postmortem Required", text))
        return rows


@dataclass(frozen=True)
class Severity:
    level: int
    name: str
    impact: str
    examples: tuple[str, ...]
    response: ResponseTargets

    @property
    def label(self) -> str:
        return f"SEV-{self.level}"

    def __str__(self) -> str:
        return f"{self.label} ({self.name})"


SEVERITIES: dict[int, Severity] = {
    1: Severity(
        1, "Critical", "Complete service outage affecting all users",
        ("Production database unavailable", "Authentication service down",
         "Data breach or security incident", "Complete loss of customer-facing functionality"),
        ResponseTargets(acknowledge_minutes=5, assemble_minutes=15, update_every_minutes=15,
                        postmortem="required", postmortem_within_minutes=48 * 60),
    ),
    2: Severity(
        2, "Major", "Significant degradation affecting many users",
        ("Partial service outage (> 10% of users)", "SLO breach (availability < target)",
         "Payment processing failures", "Data inconsistency issues"),
        ResponseTargets(acknowledge_minutes=15, assemble_minutes=30, update_every_minutes=30,
                        postmortem="required", postmortem_within_minutes=7 * 24 * 60),
    ),
    3: Severity(
        3, "Minor", "Limited impact with workaround available",
        ("Single feature degraded", "Performance degradation (< 10% of users)",
         "Non-critical service unavailable", "Intermittent errors with retry success"),
        ResponseTargets(acknowledge_minutes=60, investigate_minutes=4 * 60,
                        update_every_minutes=1440, postmortem="optional"),
    ),
    4: Severity(
        4, "Low", "Minimal impact, no immediate action needed",
        ("Cosmetic issues", "Documentation errors", "Non-blocking warnings",
         "Scheduled maintenance follow-ups"),
        ResponseTargets(acknowledge_minutes=24 * 60, resolution="Next sprint", postmortem="no"),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Thresholds:
    """Where measured impact crosses from one level to the next."""

    outage_availability: float = 0.10  # SEV-1: availability below this
    outage_no_ready_pods: bool = True  # SEV-1: no pod ready
    major_affected_share: float = 0.10  # SEV-2: more than this share of requests failing
    major_slo_breach: bool = True  # SEV-2: availability over the SLO period below target
    major_affected_services: int = 3  # SEV-2: at least this many services affected
    minor_error_ratio: float = 1.0  # SEV-3: error rate at or over this x the SLO error rate
    minor_latency_ratio: float = 1.0  # SEV-3: p99 at or over this x the latency SLO
    minor_pods_not_ready: bool = True  # SEV-3: some (not all) pods not ready
    minor_firing_alerts: bool = True  # SEV-3: alerts firing for the service
    minor_dependency_down: bool = True  # SEV-3: a dependency unavailable
    unmeasured_level: int = 3  # the level when the error rate cannot be measured


@dataclass(frozen=True)
class SeverityPolicy:
    levels: dict[int, Severity] = field(default_factory=lambda: dict(SEVERITIES))
    thresholds: Thresholds = Thresholds()
    source: str = "built-in"


DEFAULT_POLICY = SeverityPolicy()


# --- classification -------------------------------------------------------------------------


@dataclass(frozen=True)
class Impact:
    """What was measured about a service's users; None means not measured.

    ``error_rate`` and ``availability`` are over a short window (the rate window), the one
    derived from the other when only one is given. ``affected_share`` is the share of users
    or requests affected (the share of failing requests when not given).
    ``slo_period_availability`` is the availability over the SLO's own period (30 days):
    below ``slo_availability`` it is an SLO breach. ``service_down``, ``slo_breach`` and
    ``latency_degraded`` may be given outright; otherwise they are derived.
    """

    error_rate: float | None = None
    availability: float | None = None
    affected_share: float | None = None
    latency_p99: float | None = None
    ready_pods: int | None = None
    desired_pods: int | None = None
    service_down: bool | None = None
    slo_availability: float = 0.999
    slo_error_rate: float = 0.001
    slo_latency_p99: float = 0.5
    slo_period_availability: float | None = None
    slo_breach: bool | None = None
    latency_degraded: bool | None = None
    affected_services: int | None = None
    firing_alerts: tuple[str, ...] = ()
    dependencies_down: tuple[str, ...] = ()

    @property
    def failing(self) -> float | None:
        """The share of failing requests now."""
        if self.error_rate is not None:
            return self.error_rate
        return None if self.availability is None else 1.0 - self.availability

    @property
    def serving(self) -> float | None:
        """The share of successful requests now."""
        if self.availability is not None:
            return self.availability
        return None if self.error_rate is None else 1.0 - self.error_rate


@dataclass(frozen=True)
class Classification:
    severity: Severity
    reasons: tuple[str, ...]  # why this level
    signals: tuple[tuple[int, str], ...] = ()  # every rule that matched, as (level, reason)
    unmeasured: tuple[str, ...] = ()  # inputs that were not measured

    @property
    def level(self) -> int:
        return self.severity.level

    @property
    def label(self) -> str:
        return self.severity.label

    @property
    def response(self) -> ResponseTargets:
        return self.severity.response

    def summary(self) -> str:
        """One line that starts with the level: ``SEV-2 (Major): reason; reason``."""
        text = f"{self.severity}: {'; '.join(self.reasons)}"
        if self.unmeasured:
            text += f" (not measured: {', '.join(self.unmeasured)})"
        return text

    def __str__(self) -> str:
        return self.summary()


def classify(impact: Impact, policy: SeverityPolicy | None = None) -> Classification:
    """The level the measured ``impact`` calls for, with the reasons."""
    policy = policy or DEFAULT_POLICY
    t = policy.thresholds
    signals: list[tuple[int, str]] = []
    failing, serving = impact.failing, impact.serving

    # SEV-1: complete outage
    if impact.service_down:
        signals.append((1, "the service is down"))
    if t.outage_no_ready_pods and impact.ready_pods == 0:
        signals.append((1, f"no ready pods (0 of {impact.desired_pods or 0} desired)"))
    if serving is not None and serving < t.outage_availability:
        signals.append((1, f"availability {_pct(serving)} (below {_limit(t.outage_availability)}):"
                           " a complete outage"))  # fmt: skip

    # SEV-2: significant degradation
    share = impact.affected_share if impact.affected_share is not None else failing
    if share is not None and share > t.major_affected_share:
        what = "of requests failing" if impact.affected_share is None else "of users affected"
        signals.append((2, f"{_pct(share)} {what} (more than {_limit(t.major_affected_share)})"))
    if (impact.affected_services or 0) >= t.major_affected_services:
        signals.append((2, f"{impact.affected_services} services affected"))

    # SEV-3: limited impact
    floor = impact.slo_error_rate * t.minor_error_ratio
    if failing is not None and failing > 0 and failing >= floor:
        signals.append((3, f"intermittent errors: {_pct(failing)} of requests failing "
                           f"(SLO error rate {_limit(impact.slo_error_rate)})"))  # fmt: skip
    slow = impact.latency_degraded
    if slow is None and impact.latency_p99 is not None:
        slow = impact.latency_p99 >= impact.slo_latency_p99 * t.minor_latency_ratio
    if slow:
        p99 = "latency" if impact.latency_p99 is None else f"p99 {_ms(impact.latency_p99)}"
        signals.append((3, f"performance degradation: {p99} "
                           f"over the {_ms(impact.slo_latency_p99)} SLO"))  # fmt: skip
    if (
        t.minor_pods_not_ready
        and impact.ready_pods is not None
        and impact.desired_pods is not None
        and 0 < impact.ready_pods < impact.desired_pods
    ):
        signals.append((3, f"{impact.ready_pods} of {impact.desired_pods} pods ready"))
    if t.minor_firing_alerts and impact.firing_alerts:
        signals.append((3, f"alerts firing: {', '.join(impact.firing_alerts)}"))
    if t.minor_dependency_down and impact.dependencies_down:
        signals.append((3, f"dependency unavailable: {', '.join(impact.dependencies_down)}"))

    unmeasured = []
    if failing is None:
        unmeasured.append("error rate")
    if impact.latency_p99 is None and impact.latency_degraded is None:
        unmeasured.append("p99 latency")
    if impact.ready_pods is None and impact.service_down is None:
        unmeasured.append("ready pods")
    if impact.slo_period_availability is None and impact.slo_breach is None:
        unmeasured.append("SLO-period availability")
    if failing is None and not any(level < t.unmeasured_level for level, _ in signals):
        signals.append((t.unmeasured_level, "the error rate could not be measured"))

    # An SLO breached over its period makes any impact now significant (SEV-2). Without
    # impact now it is no incident: the service is fine, its error budget is spent.
    breach = impact.slo_breach
    if breach is None and impact.slo_period_availability is not None:
        breach = impact.slo_period_availability < impact.slo_availability
    breach_text = None
    if breach:
        measured = impact.slo_period_availability
        breach_text = ("SLO breached: availability "
                       + (f"{_pct(measured, 3)} " if measured is not None else "")
                       + f"below the {_limit(impact.slo_availability)} target")  # fmt: skip
    if t.major_slo_breach and breach_text and signals:
        signals.append((2, breach_text))

    if signals:
        level = min(level for level, _ in signals)
        reasons = tuple(reason for lvl, reason in signals if lvl == level)
    else:
        level, reasons = 4, (_minimal(impact, breach_text),)
    return Classification(policy.levels[level], reasons, tuple(signals), tuple(unmeasured))


def response_targets(level: int | str, policy: SeverityPolicy | None = None) -> ResponseTargets:
    """The response requirements of a level (``2``, ``"2"`` or ``"SEV-2"``)."""
    return (policy or DEFAULT_POLICY).levels[parse_level(level)].response


def parse_level(value: Any) -> int:
    """1..4 from ``1``, ``"1"``, ``"SEV-1"``, ``"sev1"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a severity level: {value!r}")
    match = re.fullmatch(r"(?:sev[-_ ]?)?([1-4])", str(value).strip(), re.IGNORECASE)
    if not match:
        raise ValueError(f"not a severity level: {value!r} (SEV-1 to SEV-4)")
    return int(match.group(1))


def _minimal(impact: Impact, breach: str | None = None) -> str:
    parts = []
    if impact.failing is not None:
        parts.append(f"error rate {_pct(impact.failing)} below the SLO's "
                     f"{_limit(impact.slo_error_rate)}")  # fmt: skip
    if impact.latency_p99 is not None:
        parts.append(f"p99 {_ms(impact.latency_p99)} within {_ms(impact.slo_latency_p99)}")
    if impact.ready_pods is not None:
        parts.append(f"{impact.ready_pods} of {impact.desired_pods} pods ready")
    now = f": {', '.join(parts)}" if parts else ""
    if breach:
        return f"no impact now{now}; {breach} over its period (error budget spent)"
    return f"no SLO breach{now}"


def _pct(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}%}"


def _limit(value: float) -> str:
    """A threshold as a percentage without trailing zeros: 10%, 99.9%, 0.1%."""
    return f"{value * 100:.6g}%"


def _ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


# --- durations ------------------------------------------------------------------------------

_UNITS = {"m": 1, "min": 1, "h": 60, "d": 1440, "w": 10080}


def parse_duration(value: Any) -> int:
    """Minutes from an int (minutes) or a string such as ``15m``, ``4h``, ``2d``, ``1w``."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int):
        minutes = value
    else:
        match = re.fullmatch(r"\s*(\d+)\s*(m|min|h|d|w)?\s*", str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (minutes, or e.g. 15m, 4h, 2d, 1w)")
        minutes = int(match.group(1)) * _UNITS[match.group(2) or "m"]
    if minutes <= 0:
        raise ValueError(f"a duration must be positive, not {value!r}")
    return minutes


def duration_text(minutes: int) -> str:
    """The playbook's words for a duration: ``5 minutes``, ``1 hour``, ``48 hours``,
    ``1 week``."""

    def unit(n: int, word: str) -> str:
        return f"{n} {word}" + ("" if n == 1 else "s")

    if minutes % 10080 == 0:
        return unit(minutes // 10080, "week")
    if minutes % 60 == 0:
        return unit(minutes // 60, "hour")
    return unit(minutes, "minute")


# --- configuration --------------------------------------------------------------------------

_LEVEL_KEYS = {
    "name": "name",
    "impact": "impact",
    "examples": "examples",
    "acknowledge": "acknowledge_minutes",
    "assemble": "assemble_minutes",
    "investigate": "investigate_minutes",
    "update_every": "update_every_minutes",
    "resolution": "resolution",
    "postmortem": "postmortem",
    "postmortem_within": "postmortem_within_minutes",
}


def policy_path() -> Path:
    """Where the severity policy is read from: ``$OPSNB_SEVERITY``, else
    ``<config dir>/severity.yaml``."""
    from .config import config_dir

    explicit = os.environ.get("OPSNB_SEVERITY")
    return Path(explicit) if explicit else config_dir() / "severity.yaml"


def load_policy(path: str | os.PathLike[str] | None = None) -> SeverityPolicy:
    """The severity policy: the defaults overridden by the ``severity:`` section of ``path``
    (default :func:`policy_path`; a missing default file means the defaults). Raises
    ConfigError naming the file and the bad key."""
    if path is None:
        chosen = policy_path()
        if not chosen.is_file():
            if os.environ.get("OPSNB_SEVERITY"):
                raise ConfigError("OPSNB_SEVERITY names a file that does not exist",
                                  path=str(chosen))  # fmt: skip
            return DEFAULT_POLICY
    else:
        chosen = Path(path)
        if not chosen.is_file():
            raise ConfigError("severity policy file does not exist", path=str(chosen))
    try:
        data = yaml.safe_load(chosen.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", path=str(chosen)) from None
    if not isinstance(data, Mapping):
        raise ConfigError("the top level must be a mapping", path=str(chosen))
    try:
        return parse_policy(data.get("severity"), source=str(chosen))
    except ConfigError as exc:
        raise ConfigError(str(exc), path=str(chosen)) from None


def parse_policy(section: Any, *, source: str = "built-in") -> SeverityPolicy:
    """A policy from the contents of a ``severity:`` section (None: the defaults)."""
    if section is None:
        return replace(DEFAULT_POLICY, source=source)
    if not isinstance(section, Mapping):
        raise ConfigError("'severity' must be a mapping with 'thresholds' and/or 'levels'")
    _known(section, ("thresholds", "levels"), "severity")
    thresholds = _thresholds(section.get("thresholds") or {})
    levels = dict(SEVERITIES)
    raw_levels = section.get("levels") or {}
    if not isinstance(raw_levels, Mapping):
        raise ConfigError("severity.levels must be a mapping of SEV-1..SEV-4 to settings")
    for key, spec in raw_levels.items():
        try:
            level = parse_level(key)
        except ValueError:
            raise ConfigError(
                f"severity.levels: unknown level {key!r}; known: SEV-1, SEV-2, SEV-3, SEV-4"
            ) from None
        levels[level] = _level(levels[level], spec, f"severity.levels.SEV-{level}")
    return SeverityPolicy(levels=levels, thresholds=thresholds, source=source)


def _known(section: Mapping[str, Any], known: Any, where: str) -> None:
    for key in section:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}; known: {', '.join(known)}")


def _thresholds(raw: Any) -> Thresholds:
    if not isinstance(raw, Mapping):
        raise ConfigError("severity.thresholds must be a mapping")
    spec = {f.name: f for f in fields(Thresholds)}
    _known(raw, list(spec), "severity.thresholds")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"severity.thresholds.{key}"
        default = getattr(Thresholds(), key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where} must be true or false, not {value!r}")
        elif key == "unmeasured_level":
            try:
                value = parse_level(value)
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{where} must be a whole number of at least 1, not {value!r}")
        else:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{where} must be a non-negative number, not {value!r}")
            value = float(value)
            if key.endswith(("_availability", "_share")) and value > 1:
                raise ConfigError(f"{where} is a share between 0 and 1, not {value!r}")
        values[key] = value
    return Thresholds(**values)


def _level(current: Severity, raw: Any, where: str) -> Severity:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    _known(raw, list(_LEVEL_KEYS), where)
    about: dict[str, Any] = {}
    response: dict[str, Any] = {}
    for key, value in raw.items():
        name = _LEVEL_KEYS[key]
        here = f"{where}.{key}"
        if key in ("name", "impact", "resolution"):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{here} must be text, not {value!r}")
            (response if key == "resolution" else about)[name] = value
        elif key == "examples":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{here} must be a list of text")
            about[name] = tuple(value)
        elif key == "postmortem":
            if isinstance(value, bool):
                value = "required" if value else "no"
            if value not in POSTMORTEM:
                raise ConfigError(f"{here} must be one of {', '.join(POSTMORTEM)}, not {value!r}")
            response[name] = value
        else:
            if value is None and key != "acknowledge":
                response[name] = None
                continue
            try:
                response[name] = parse_duration(value)
            except ValueError as exc:
                raise ConfigError(f"{here}: {exc}") from None
    return replace(current, **about, response=replace(current.response, **response))
