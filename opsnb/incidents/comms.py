"""The playbook's incident messages, rendered from the incident's state, posted to
Slack-compatible webhooks and a status page API, and recorded on the timeline.

Templates (the playbook's "Communication templates"):

==========================  =================================  =========================
template                    playbook template                  posted to
==========================  =================================  =========================
``declared``                initial_notice (INCIDENT DECLARED)  webhooks
``update``                  status_update (STATUS UPDATE)       webhooks
``resolved``                resolution_notice                   webhooks
``customer-investigating``  customer_notice.investigating       status page
``customer-identified``     customer_notice.identified          status page
``customer-resolved``       customer_notice.resolved            status page
==========================  =================================  =========================

Configuration, in any config file (:func:`opsnb.config.config_files`; a later file's
``notifications:`` section replaces an earlier one's)::

    notifications:
      webhooks:
        - url: {env: SLACK_INCIDENTS_WEBHOOK}   # or a plain URL
          token: {env: CHAT_TOKEN}              # optional: Authorization: Bearer <token>
          name: incidents                       # optional: how the timeline names it
          style: slack                          # optional: *bold* instead of **bold**
      status_page:
        url: https://api.statuspage.io/v1/pages/PAGE_ID/incidents
        token: {env: STATUSPAGE_API_KEY}        # Authorization: OAuth <token>
        component_ids: [COMPONENT_ID]           # optional

A webhook receives ``{"text": <message>}``. The status page receives the playbook's
statuspage.io call: the first customer message creates an incident (``POST url`` with
``{"incident": {"name", "status", "body", "component_ids"}}``), later ones update it
(``PATCH url/<id>``, the id the first answer gave, kept on the timeline).

Every message sent is recorded on the timeline as a ``message`` event with its text and,
per channel, whether it was delivered; a failed post is reported and recorded, and never
touches the incident's state. URLs and tokens never reach the timeline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..config import config_files
from ..errors import ConfigError
from ..secrets import Redactor, SecretRef
from ..severity import SeverityPolicy, duration_text
from .model import (
    UPDATE_TEMPLATES,
    Event,
    Incident,
    IncidentUsageError,
    duration_words,
    parse_time,
    utc_now,
)
from .store import Pending, Store
from .timeline import Entry, entries

INTERNAL = ("declared", "update", "resolved")
CUSTOMER = ("customer-investigating", "customer-identified", "customer-resolved")
TEMPLATES = INTERNAL + CUSTOMER
TIMEOUT = 5.0

NEXT_STEPS = {
    "rollback": "Roll back the recent deployment",
    "scale-up": "Scale up the service",
    "increase-memory-limit": "Raise the memory limit",
    "terminate-long-queries": "Terminate the long-running database queries",
    "enable-circuit-breaker": "Enable the circuit breaker for the failing dependency",
    "failover": "Fail over to the secondary",
    "escalate": "Engage a subject matter expert",
}


@dataclass(frozen=True)
class Message:
    template: str
    text: str
    status: str  # the incident status the message announces (status page status)


@dataclass(frozen=True)
class Details:
    """What a person may say instead of what is derived from the state."""

    progress: str | None = None
    next_steps: str | None = None
    eta: str | None = None
    issue: str | None = None
    symptoms: str | None = None
    postmortem: str | None = None


# --- rendering --------------------------------------------------------------------------------


def render(
    incident: Incident,
    template: str,
    *,
    details: Details | None = None,
    now: datetime | None = None,
    policy: SeverityPolicy | None = None,
) -> Message:
    """The playbook's ``template`` filled in from the incident's state."""
    if template not in TEMPLATES:
        raise IncidentUsageError(f"unknown message {template!r}; messages: {', '.join(TEMPLATES)}")
    if template in ("resolved", "customer-resolved") and incident.is_open:
        raise IncidentUsageError(f"{incident.id} is not resolved; resolve it first")
    d = details or Details()
    now = now or utc_now()
    level = incident.level(policy)
    header = f"**Incident**: {incident.id} {incident.title} ({incident.service})"
    eta = d.eta or incident.eta
    issue = d.issue or _lower_first(incident.title)
    if template == "declared":
        lines = [
            ":rotating_light: **INCIDENT DECLARED**", header,
            f"**Severity**: {level.label} ({level.name})",
            f"**Impact**: {incident.impact or incident.title}",
            f"**Status**: {incident.status.capitalize()}",
            f"**IC**: {incident.roles.get('ic') or 'unassigned'}",
            f"**War Room**: {incident.war_room or 'not set'}",
        ]  # fmt: skip
    elif template == "update":
        lines = [
            f":information_source: **STATUS UPDATE** - {now.strftime('%H:%M')} UTC", header,
            f"**Severity**: {level.label} ({level.name})",
            f"**Current Status**: {incident.status.capitalize()}",
            f"**Progress**: {d.progress or progress(incident)}",
            f"**Next Steps**: {d.next_steps or next_steps(incident)}",
            f"**ETA**: {eta or 'Unknown'}",
        ]  # fmt: skip
    elif template == "resolved":
        assert incident.resolved_at is not None
        duration = parse_time(incident.resolved_at) - parse_time(incident.opened_at)
        count = len(incident.action_items)
        lines = [
            ":white_check_mark: **INCIDENT RESOLVED**", header,
            f"**Duration**: {duration_words(duration)}",
            f"**Resolution**: {incident.summary or 'not recorded'}",
            f"**Postmortem**: {_postmortem(incident, d.postmortem, policy)}",
            f"**Action Items**: {count} item{'' if count == 1 else 's'} identified",
        ]  # fmt: skip
    elif template == "customer-investigating":
        symptoms = (
            d.symptoms or incident.impact or f"errors or slow responses from {incident.service}"
        )
        lines = [
            f"We are currently investigating reports of {issue}.",
            f"Some users may experience {_lower_first(symptoms)}. "
            "We will provide updates as we learn more.",
        ]  # fmt: skip
    elif template == "customer-identified":
        expect = (
            f"We expect to have this resolved by {eta}."
            if eta
            else "We will share an expected resolution time as soon as we have one."
        )
        lines = [
            f"We have identified the cause of {issue}.",
            f"Our team is working on a fix. {expect}",
        ]
    else:
        lines = [
            f"The issue affecting {incident.service} has been resolved.",
            "All systems are now operating normally.",
            "We apologize for any inconvenience caused.",
        ]
    status = template.removeprefix("customer-") if template in CUSTOMER else incident.status
    return Message(template, "\n".join(lines), status)


def _lower_first(text: str) -> str:
    """``checkout errors`` from ``Checkout errors``; ``API errors`` stays."""
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _since_last_update(incident: Incident) -> list[Entry]:
    """Timeline entries recorded after the last status update message."""
    after = 0
    for index, event in enumerate(incident.events):
        if (
            event.kind == "message"
            and event.data.get("template") in UPDATE_TEMPLATES
            and (
                event.data.get("manual")
                or any(d.get("ok") for d in event.data.get("deliveries", []))
            )
        ):
            after = index + 1
    recent = {event.id for event in incident.events[after:]}
    return [entry for entry in entries(incident) if entry.id in recent]


def progress(incident: Incident) -> str:
    """What was learned and done since the last status update, from the timeline."""
    items: list[str] = []
    for entry in _since_last_update(incident):
        d = entry.event.data
        kind = entry.kind
        if kind == "finding" and d.get("cause") != "healthy":
            items.append(f"identified {d.get('cause')} (recommended: {d.get('recommendation')})")
        elif kind == "action":
            outcome = d.get("outcome")
            done = outcome if outcome in ("applied", "previewed") else f"not applied ({outcome})"
            items.append(f"{d.get('action')} {d.get('object')} {done}")
        elif kind == "status" and d.get("from") != d.get("to"):
            items.append(f"status {d.get('to')}")
        elif kind == "severity":
            items.append(f"severity changed to SEV-{d.get('to')}")
        elif kind == "run":
            items.append(f"ran the {d.get('runbook')} runbook")
        elif kind == "note" and not d.get("action_item"):
            items.append(entry.text)
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return "; ".join(seen[-6:]) if seen else "No change since the last update"


def next_steps(incident: Incident) -> str:
    finding = next(
        (e for e in reversed(incident.events)
         if e.kind == "finding" and e.data.get("recommendation") not in (None, "none")),
        None,
    )  # fmt: skip
    advice = NEXT_STEPS.get(str(finding.data.get("recommendation"))) if finding else None
    if incident.status == "investigating":
        return (
            f"{advice} (recommended by the diagnosis)" if advice else "Continue the investigation"
        )
    if incident.status == "identified":
        return advice or "Choose and apply a mitigation"
    if incident.status == "mitigating":
        return "Verify the mitigation: error rate, latency and pods back to normal"
    return "Monitor; the postmortem follows"


def _postmortem(incident: Incident, scheduled: str | None, policy: SeverityPolicy | None) -> str:
    if scheduled:
        return f"Scheduled for {scheduled}"
    response = incident.response(policy)
    if response.postmortem == "required":
        within = response.postmortem_within_minutes
        if within is None or incident.resolved_at is None:
            return "Required, to be scheduled"
        due = parse_time(incident.resolved_at) + timedelta(minutes=within)
        return (f"To be scheduled, due by {due.strftime('%Y-%m-%d %H:%M')} UTC "
                f"(required within {duration_text(within)})")  # fmt: skip
    return "Optional" if response.postmortem == "optional" else "Not required"


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    kind: str  # webhook | status_page
    name: str
    url: SecretRef | str
    token: SecretRef | None = None
    style: str = "markdown"  # markdown | slack
    component_ids: tuple[str, ...] = ()

    def resolve_url(self) -> str:
        return self.url.resolve() if isinstance(self.url, SecretRef) else self.url


@dataclass(frozen=True)
class Notifications:
    webhooks: tuple[Channel, ...] = ()
    status_page: Channel | None = None
    source: str | None = None

    def channels_for(self, template: str) -> list[Channel]:
        if template in CUSTOMER:
            return [self.status_page] if self.status_page else []
        return list(self.webhooks)


def load_notifications() -> Notifications:
    """The ``notifications:`` section of the config files (the last file that has one)."""
    found: Notifications = Notifications()
    for path in config_files():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML: {exc}", path=str(path)) from None
        if isinstance(data, Mapping) and data.get("notifications") is not None:
            try:
                found = parse_notifications(data["notifications"], source=str(path))
            except ConfigError as exc:
                raise ConfigError(str(exc), path=str(path)) from None
    return found


def parse_notifications(section: Any, *, source: str | None = None) -> Notifications:
    if not isinstance(section, Mapping):
        raise ConfigError("'notifications' must be a mapping with webhooks and/or status_page")
    unknown = set(section) - {"webhooks", "status_page"}
    if unknown:
        raise ConfigError(f"notifications: unknown keys {sorted(unknown)}")
    hooks = section.get("webhooks") or []
    if not isinstance(hooks, list):
        raise ConfigError("notifications.webhooks must be a list of {url, token}")
    webhooks = tuple(
        _channel("webhook", spec, f"notifications.webhooks[{i}]") for i, spec in enumerate(hooks)
    )
    page = section.get("status_page")
    status_page = _channel("status_page", page, "notifications.status_page") if page else None
    return Notifications(webhooks, status_page, source)


def _channel(kind: str, spec: Any, where: str) -> Channel:
    if not isinstance(spec, Mapping) or not spec.get("url"):
        raise ConfigError(f"{where} must be a mapping with a url")
    unknown = set(spec) - {"url", "token", "name", "style", "component_ids"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    raw_url = spec["url"]
    url: SecretRef | str
    if isinstance(raw_url, Mapping) or (
        isinstance(raw_url, str) and raw_url.startswith(("env:", "file:"))
    ):
        url = SecretRef.parse(raw_url, where=f"{where}.url")
        shown = url.describe()
    else:
        url = str(raw_url)
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"{where}.url must be an http(s) URL")
        shown = urlsplit(url).netloc
    token = SecretRef.parse(spec["token"], where=f"{where}.token") if spec.get("token") else None
    style = str(spec.get("style", "markdown"))
    if style not in ("markdown", "slack"):
        raise ConfigError(f"{where}.style must be markdown or slack")
    label = "status page" if kind == "status_page" else "webhook"
    name = str(spec.get("name") or f"{label} {shown}")
    ids = spec.get("component_ids") or []
    return Channel(kind, name, url, token, style, tuple(str(i) for i in ids))


# --- posting ----------------------------------------------------------------------------------


@dataclass
class Delivery:
    channel: str
    ok: bool
    status: int | None = None
    error: str | None = None
    status_page_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "ok": self.ok, "status": self.status,
                "error": self.error}  # fmt: skip


def _slack(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"*\1*", text)


def post(
    incident: Incident,
    message: Message,
    channels: list[Channel],
    *,
    client: Any = None,
    timeout: float = TIMEOUT,
) -> list[Delivery]:
    """Post ``message`` to each channel; every failure becomes a Delivery with the reason."""
    import httpx

    own = client is None
    http = client or httpx.Client(timeout=timeout)
    try:
        return [_deliver(http, incident, message, channel) for channel in channels]
    finally:
        if own:
            http.close()


def _deliver(http: Any, incident: Incident, message: Message, channel: Channel) -> Delivery:
    import httpx

    secrets: list[str] = []
    try:
        url = channel.resolve_url()
        secrets.append(url)
        token = channel.token.resolve() if channel.token else None
        if token:
            secrets.append(token)
        headers = {"Content-Type": "application/json"}
        if channel.kind == "webhook":
            if token:
                headers["Authorization"] = f"Bearer {token}"
            text = _slack(message.text) if channel.style == "slack" else message.text
            answer = http.post(url, json={"text": text}, headers=headers)
        else:
            if token:
                headers["Authorization"] = f"OAuth {token}"
            body: dict[str, Any] = {"status": message.status, "body": message.text}
            if incident.status_page_id:
                answer = http.patch(f"{url.rstrip('/')}/{incident.status_page_id}",
                                    json={"incident": body}, headers=headers)  # fmt: skip
            else:
                body["name"] = f"{incident.title} ({incident.service})"
                if channel.component_ids:
                    body["component_ids"] = list(channel.component_ids)
                answer = http.post(url, json={"incident": body}, headers=headers)
    except httpx.HTTPError as exc:
        reason = Redactor(secrets).text(f"{type(exc).__name__}: {exc}")
        return Delivery(channel.name, False, error=reason)
    except Exception as exc:  # a missing secret, a bad URL: reported, never raised
        reason = Redactor(secrets).text(f"{type(exc).__name__}: {exc}")
        return Delivery(channel.name, False, error=reason)
    if not 200 <= answer.status_code < 300:
        return Delivery(channel.name, False, answer.status_code, f"HTTP {answer.status_code}")
    page_id = None
    if channel.kind == "status_page" and not incident.status_page_id:
        try:
            page_id = str(answer.json().get("id") or "") or None
        except (ValueError, AttributeError):
            page_id = None
    return Delivery(channel.name, True, answer.status_code, None, page_id)


@dataclass
class Sent:
    message: Message
    deliveries: list[Delivery] = field(default_factory=list)
    event: Event | None = None

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if not d.ok]


def send(
    incident_id: str,
    template: str,
    *,
    store: Store,
    details: Details | None = None,
    post_it: bool = False,
    manual: bool = False,
    by: str,
    notifications: Notifications | None = None,
    client: Any = None,
    now: datetime | None = None,
) -> Sent:
    """Render ``template``; with ``post_it`` post it to its channels, with ``manual`` record
    it as sent by hand. Either way (even when every post failed) the message is recorded on
    the timeline; a message only rendered is not."""
    incident = store.load(incident_id)
    message = render(incident, template, details=details, now=now or store.clock(),
                     policy=store.policy)  # fmt: skip
    if not (post_it or manual):
        return Sent(message)
    deliveries: list[Delivery] = []
    if post_it:
        config = notifications if notifications is not None else load_notifications()
        channels = config.channels_for(template)
        if not channels:
            where = (
                "notifications.status_page" if template in CUSTOMER else "notifications.webhooks"
            )
            raise IncidentUsageError(f"nothing to post {template!r} to: configure {where}")
        deliveries = post(incident, message, channels, client=client)
    data: dict[str, Any] = {
        "template": template, "text": message.text, "posted": post_it, "manual": manual,
        "deliveries": [d.to_dict() for d in deliveries],
    }  # fmt: skip
    if details and details.eta:
        data["eta"] = details.eta
    page_id = next((d.status_page_id for d in deliveries if d.status_page_id), None)
    if page_id:
        data["status_page_id"] = page_id
    (event,) = store.append(incident_id, lambda _state: [Pending("message", data, by)])
    return Sent(message, deliveries, event)
