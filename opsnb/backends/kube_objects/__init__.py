"""Kubernetes API objects (plain JSON dicts) turned into DataFrames and summaries.

Shared by the live backend (``kubernetes.py``, which fetches raw JSON) and the snapshot
backend (``snapshot.py``, which reads the recorded List files), so both answer with the
same columns. Nothing here imports the ``kubernetes`` client.

One module per kind of object: ``pods``, ``deployments`` (rollout history, rollback plans,
rollout status), ``events``, ``hpa``; ``templates`` for changes to a deployment's pod
template; ``selectors`` for label selectors; ``common`` for what they share.
"""

from __future__ import annotations

from .common import (
    CHANGE_CAUSE,
    DEFAULT_CONTAINER,
    EVENT_COLUMNS,
    HASH_LABEL,
    HISTORY_COLUMNS,
    POD_COLUMNS,
    RESTARTED_AT,
    REVISION,
    Change,
    LogsNotFound,
    ObjectNotFound,
    timestamp,
    utc,
)
from .deployments import (
    RollbackPlan,
    container_env,
    current_replicaset,
    deployment_summary,
    describe_rollback,
    owned_replicasets,
    rollback_change,
    rollback_plan,
    rollout_history_frame,
    rollout_result,
    rollout_status,
)
from .events import (
    events_frame,
    since_time,
)
from .hpa import (
    describe_hpa,
    hpa_patch,
    hpa_summary,
)
from .pods import (
    default_container,
    pod_row,
    pods_frame,
)
from .selectors import (
    match_selector,
    selector_matcher,
)
from .templates import (
    CHANGE_CAUSE_PREFIX,
    PINNED_FROM,
    container_resources,
    deployment_manifest,
    describe_apply,
    describe_image,
    describe_resources,
    find_container,
    image_patch,
    merge_resources,
    parse_quantity,
    resources_patch,
    set_image_template,
    set_resources_template,
    strategic_merge,
    template_diff,
    template_yaml,
)

__all__ = [
    "CHANGE_CAUSE",
    "CHANGE_CAUSE_PREFIX",
    "Change",
    "DEFAULT_CONTAINER",
    "EVENT_COLUMNS",
    "HASH_LABEL",
    "HISTORY_COLUMNS",
    "LogsNotFound",
    "ObjectNotFound",
    "PINNED_FROM",
    "POD_COLUMNS",
    "RESTARTED_AT",
    "REVISION",
    "RollbackPlan",
    "container_env",
    "container_resources",
    "current_replicaset",
    "default_container",
    "deployment_manifest",
    "deployment_summary",
    "describe_apply",
    "describe_hpa",
    "describe_image",
    "describe_resources",
    "describe_rollback",
    "events_frame",
    "find_container",
    "hpa_patch",
    "hpa_summary",
    "image_patch",
    "match_selector",
    "merge_resources",
    "owned_replicasets",
    "parse_quantity",
    "pod_row",
    "pods_frame",
    "resources_patch",
    "rollback_change",
    "rollback_plan",
    "rollout_history_frame",
    "rollout_result",
    "rollout_status",
    "selector_matcher",
    "set_image_template",
    "set_resources_template",
    "since_time",
    "strategic_merge",
    "template_diff",
    "template_yaml",
    "timestamp",
    "utc",
]
