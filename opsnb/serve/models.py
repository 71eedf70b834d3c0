"""Alertmanager's webhook payload (version "4"), strictly validated.

``{version, groupKey, truncatedAlerts, status, receiver, groupLabels, commonLabels,
commonAnnotations, externalURL, alerts: [{status, labels, annotations, startsAt, endsAt,
generatorURL, fingerprint}]}``. Types are strict (no "3" for 3, no number for a string);
unknown keys are ignored so a newer Alertmanager that adds fields is still accepted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

LabelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
LabelValue = Annotated[str, StringConstraints(max_length=4096)]
AnnotationValue = Annotated[str, StringConstraints(max_length=16384)]
Labels = Annotated[dict[LabelName, LabelValue], Field(max_length=128)]
Annotations = Annotated[dict[LabelName, AnnotationValue], Field(max_length=128)]
Status = Literal["firing", "resolved"]
MAX_ALERTS = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Alert(_Strict):
    status: Status
    labels: Labels
    annotations: Annotations = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: Annotated[str, StringConstraints(max_length=4096)] = ""
    fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{1,64}$")]

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


class Webhook(_Strict):
    version: Literal["4"]
    groupKey: Annotated[str, StringConstraints(max_length=16384)]
    truncatedAlerts: Annotated[int, Field(ge=0)] = 0
    status: Status
    receiver: Annotated[str, StringConstraints(max_length=1024)]
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Annotations = Field(default_factory=dict)
    externalURL: Annotated[str, StringConstraints(max_length=4096)] = ""
    alerts: Annotated[list[Alert], Field(min_length=1, max_length=MAX_ALERTS)]


class BadPayload(ValueError):
    """The body is not a valid webhook; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 422, details: list[str] | None = None):
        self.status = status
        self.details = details or []
        super().__init__(message)


def parse(body: bytes) -> Webhook:
    """Validate a request body; raise BadPayload with a message people can act on."""
    try:
        return Webhook.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(e["type"] in ("json_invalid", "json_type") for e in errors):
            raise BadPayload(f"malformed JSON: {errors[0]['msg']}", status=400) from None
        details = [_describe(e) for e in errors[:20]]
        raise BadPayload(
            "not an Alertmanager webhook payload (version 4): " + "; ".join(details[:3]),
            details=details,
        ) from None


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ())) or "body"
    return f"{where}: {error.get('msg', 'invalid')}"


def openapi_schema() -> dict[str, Any]:
    """The request body's JSON schema, for the OpenAPI document."""
    return Webhook.model_json_schema(ref_template="#/components/schemas/{model}")
