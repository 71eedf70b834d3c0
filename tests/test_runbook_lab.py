"""high-error-rate against the lab: real services, a real fault, a real rollback."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import labtools
import pytest
import yaml
from labtools import below, checks, error_rate, kube_requests, mutating, wait_until

from opsnb.lab.kubeapi import KubeAPIServer
from opsnb.lab.processes import free_port


def run(*args: str) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
    return labtools.run("high-error-rate", *args)


def test_bad_deploy_is_found_and_nothing_changes_without_apply(lab, tmp_path):
    httpx.post(f"{lab.kube.url}/_test/reset-requests", timeout=5)
    lab.inject("bad-deploy")
    try:
        wait_until("the error rate to pass 5%", lambda: (error_rate(lab) or 0) > 0.05)
        image_before = lab.deployment()["spec"]["template"]["spec"]["containers"][0]["image"]
        done, result = run("--target", "lab", "--out", str(tmp_path))
        assert done.returncode == 0, result["error"]
        primary = result["findings"][0]
        assert (primary["cause"], primary["recommendation"]) == ("recent-deployment", "rollback")
        assert [a["outcome"] for a in result["actions"]] == ["previewed"]
        seen = kube_requests(lab)
        assert [r for r in seen if r["dry_run"]], "the rollback preview was not a server dry run"
        assert mutating(seen) == []
        image_after = lab.deployment()["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image_after == image_before and image_after.endswith("-bad")
    finally:
        lab.clear()


def test_apply_rolls_back_and_the_error_rate_falls(lab, tmp_path):
    lab.inject("bad-deploy")
    try:
        wait_until("the error rate to pass 5%", lambda: (error_rate(lab) or 0) > 0.05)
        revision_before = int(lab.deployment()["metadata"]["annotations"][
            "deployment.kubernetes.io/revision"])  # fmt: skip
        done, result = run("--target", "lab", "--apply", "--out", str(tmp_path))
        assert done.returncode == 0, result["error"]
        assert result["findings"][0]["cause"] == "recent-deployment"
        assert [(a["action"], a["outcome"]) for a in result["actions"]] == [("rollback", "applied")]
        deployment = lab.deployment()
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert not image.endswith("-bad")
        revision = int(deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
        assert revision > revision_before
        wait_until("the error rate to fall below 1%", lambda: below(error_rate(lab), 0.01), 90)
        # The action is in the action log too, with who and when.
        log = Path(os.environ["OPSNB_HOME"]) / "actions.jsonl"
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        assert any(e["action"] == "rollback" and e["outcome"] == "applied" for e in entries)
    finally:
        lab.clear()


@pytest.fixture
def broken_target(lab, tmp_path):
    """Target ``broken``: the lab, but Prometheus stopped, the Kubernetes API answering 500
    and PostgreSQL unreachable."""
    failing_kube = KubeAPIServer(host="127.0.0.1", port=0).start()
    failing_kube.fail_with(500)
    kubeconfig = failing_kube.write_kubeconfig(tmp_path / "kubeconfig", context="broken",
                                               namespace="production")  # fmt: skip
    lab_spec = yaml.safe_load(
        (Path(os.environ["OPSNB_HOME"]) / "targets.d" / "lab.yaml").read_text()
    )["targets"]["lab"]
    spec = dict(lab_spec)
    spec["prometheus"] = {"url": f"http://127.0.0.1:{free_port()}", "rate_window": "20s"}
    spec["kubernetes"] = {"kubeconfig": str(kubeconfig), "context": "broken",
                          "namespace": "production"}  # fmt: skip
    spec["postgres"] = {**lab_spec["postgres"], "port": free_port()}
    path = Path(os.environ["OPSNB_HOME"]) / "targets.d" / "broken.yaml"
    path.write_text(yaml.safe_dump({"targets": {"broken": spec}}))
    yield "broken"
    path.unlink()
    failing_kube.stop()


def test_unavailable_backends_do_not_fail_the_run(broken_target, tmp_path):
    began = time.monotonic()
    done, result = run("--target", broken_target, "--out", str(tmp_path), "--deadline", "120")
    assert time.monotonic() - began < 120
    assert done.returncode == 0, result["error"]
    statuses = checks(result)
    for name in ("Error rate against the alert threshold", "p99 latency against the SLO",
                 "Rollouts in the window", "Pods ready", "PostgreSQL connections",
                 "Error log breakdown"):  # fmt: skip
        assert statuses[name] == "unavailable", (name, result["checks"])
    details = {c["name"]: c["detail"] for c in result["checks"]}
    assert "prometheus" in details["Error rate against the alert threshold"].lower()
    assert "500" in details["Pods ready"]
    # Redis is still up, so its check still runs.
    assert statuses["Redis cache"] in ("ok", "warn")
    assert (result["findings"][0]["cause"], result["findings"][0]["recommendation"]) == (
        "unknown", "escalate",
    )  # fmt: skip
    assert result["actions"] == []  # nothing to stage without a diagnosis


def test_secret_of_the_lab_target_is_nowhere_in_the_run_folder(lab, tmp_path):
    password = os.environ["OPSNB_LAB_PG_PASSWORD"]
    done, result = run("--target", "lab", "--out", str(tmp_path))
    assert done.returncode == 0
    assert checks(result)["PostgreSQL connections"] == "ok"  # the password was used
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    for f in run_dir.iterdir():
        assert password not in f.read_text(), f.name
    assert password not in done.stdout + done.stderr
