"""Which revision the rollout check blames: a ReplicaSet made with its deployment is no
rollout, but once ``revisionHistoryLimit`` has pruned that first one, the oldest left is a
rollout like any other (a recorded Kubernetes state, read through the snapshot backend)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from opsnb.config import Target
from opsnb.runtime import steps
from opsnb.runtime.session import Runbook

NOW = pd.Timestamp("2025-01-15T14:30:00Z")  # the window is the hour before
UID = "dep-1"


def iso(when: str) -> str:
    return pd.Timestamp(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def replicaset(revision: int, created: str) -> dict[str, Any]:
    return {
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"payments-r{revision}",
            "namespace": "production",
            "creationTimestamp": iso(created),
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [{"kind": "Deployment", "name": "payments", "uid": UID}],
        },
        "spec": {
            "replicas": 0,
            "template": {"spec": {"containers": [{"name": "payments", "image": f"p:{revision}"}]}},
        },
    }


def recorded(tmp_path: Path, deployment_created: str | None, *replicasets: dict) -> Runbook:
    """A snapshot of one deployment and its ReplicaSets; a session on it."""
    folder = tmp_path / "snapshots" / "payments"
    (folder / "kubernetes").mkdir(parents=True)
    (folder / "snapshot.json").write_text(
        json.dumps(
            {
                "format": "opsnb-snapshot/1",
                "service": "payments",
                "namespace": "production",
                "selector": "app=payments",
                "deployment": "payments",
                "container": "payments",
                "start": iso("2025-01-15T13:00:00Z"),
                "end": iso("2025-01-15T15:00:00Z"),
                "now": iso(str(NOW)),
                "step_seconds": 60,
                "rate_window": "5m",
            }
        )
    )
    metadata: dict[str, Any] = {"name": "payments", "uid": UID}
    if deployment_created:
        metadata["creationTimestamp"] = iso(deployment_created)
    newest = max(int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
                 for rs in replicasets)  # fmt: skip
    metadata["annotations"] = {"deployment.kubernetes.io/revision": str(newest)}
    deployment = {
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {"replicas": 1, "template": replicasets[-1]["spec"]["template"]},
        "status": {"replicas": 1},
    }
    (folder / "kubernetes" / "deployments.json").write_text(
        json.dumps({"kind": "DeploymentList", "items": [deployment]})
    )
    (folder / "kubernetes" / "replicasets.json").write_text(
        json.dumps({"kind": "ReplicaSetList", "items": list(replicasets)})
    )
    target = Target(name="recorded", kind="snapshot", services={}, snapshot=folder.parent)
    return Runbook(target, target.service("payments"), runbook="high-error-rate", window_minutes=60)


@pytest.mark.parametrize(
    "deployment_created, replicasets, blamed",
    [
        # a deployment created in the window: its first ReplicaSet is no rollout
        ("2025-01-15T14:00:00Z", [(1, "2025-01-15T14:00:02Z")], None),
        # a rollout in the window after an old revision
        ("2025-01-01T00:00:00Z", [(4, "2025-01-10T09:00:00Z"), (5, "2025-01-15T14:10:00Z")], 5),
        # history pruned to the revision rolled out in the window: the oldest left, yet a
        # rollout (the deployment is two weeks older)
        ("2025-01-01T00:00:00Z", [(9, "2025-01-15T14:10:00Z")], 9),
        # pruned, with the rollout's predecessor also in the window
        ("2025-01-01T00:00:00Z", [(8, "2025-01-15T13:50:00Z"), (9, "2025-01-15T14:10:00Z")], 9),
        # nothing in the window
        ("2025-01-01T00:00:00Z", [(3, "2025-01-02T00:00:00Z")], None),
        # no deployment creation time recorded: the oldest ReplicaSet counts as the first
        (None, [(1, "2025-01-15T14:10:00Z")], None),
    ],
)
def test_the_revision_rolled_out_in_the_window_is_blamed(
    tmp_path, deployment_created, replicasets, blamed
) -> None:
    rb = recorded(tmp_path, deployment_created, *[replicaset(r, t) for r, t in replicasets])
    marks = steps.rollouts(rb)
    assert rb.facts.rollout_revision == blamed
    if blamed is not None:
        created = dict(replicasets)[blamed]
        assert rb.facts.rollout_at == pd.Timestamp(created)
        assert (pd.Timestamp(created), f"rev {blamed}") in marks
