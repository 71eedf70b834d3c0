"""The Kubernetes operational procedures as runbooks: deploy, rollback, scale.

On the demo (recorded snapshots, read-only) and under the plain papermill CLI every runbook
runs to the end; on the lab they really deploy, roll back and scale through the Kubernetes
test API server, and without ``--apply`` nothing but reads and dry runs reaches it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
import yaml

from opsnb.catalog import parse_parameters
from opsnb.lab.orchestrator import GOOD_VERSION, IMAGE_REPO, NAMESPACE
from opsnb.promql import render
from opsnb.records import ACTION_MIME, CHECK_MIME, FINDING_MIME, scan

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RUNBOOKS = ("deploy", "rollback", "scale")
SERVICE = "my-service"
GOOD_IMAGE = f"{IMAGE_REPO}:{GOOD_VERSION}"
BAD_IMAGE = f"{IMAGE_REPO}:2.0.0-bad"
SETTLE = "10"  # seconds of traffic on a new revision before it is judged (rate window 20 s)


# --- helpers ----------------------------------------------------------------------------------


def _instant(lab, name: str) -> float | None:
    result = lab.prometheus.query(render(name, service=SERVICE, window="20s"))
    return float(result[0]["value"][1]) if result else None


def error_rate(lab) -> float | None:
    return _instant(lab, "error_rate")


def healthy(lab) -> bool:
    """Requests measured over the last rate window, and under 1% of them failing (no 5xx
    series at all counts as none failing)."""
    return (_instant(lab, "throughput") or 0) > 0 and (error_rate(lab) or 0) < 0.01


def wait_until(what: str, probe, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what} (last: {value!r})")


def _start(runbook: str, *args: str, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "opsnb"), "run", runbook, *args, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[str, dict[str, Any]]:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr
    run_dir = Path(stdout.strip().splitlines()[-1])
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok", result["error"]
    return stderr, result


def run(runbook: str, *args: str, out: Path) -> dict[str, Any]:
    """``opsnb run RUNBOOK ARGS`` to the end (exit 0, status ok); its result.json."""
    return _finish(_start(runbook, *args, out=out))[1]


def run_many(calls: list[tuple[str, ...]], out: Path) -> list[dict[str, Any]]:
    """Several runs, one after the other."""
    return [run(c[0], *c[1:], out=out / str(i)) for i, c in enumerate(calls)]


def checks(result: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in result["checks"]}


def actions(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["action"], a["outcome"]) for a in result["actions"]]


def deployment(lab) -> dict[str, Any]:
    found = lab.deployment()
    assert found is not None
    return found


def image(lab) -> str:
    return str(deployment(lab)["spec"]["template"]["spec"]["containers"][0]["image"])


def revision(lab) -> int:
    return int(deployment(lab)["metadata"]["annotations"]["deployment.kubernetes.io/revision"])


def ready_pods(lab) -> int:
    return sum(
        all(c.get("ready") for c in p["status"].get("containerStatuses", []))
        for p in lab.revision_pods()
    )


def kube_requests(lab) -> list[dict[str, Any]]:
    return list(httpx.get(f"{lab.kube.url}/_test/requests", timeout=5).json())


def reset_requests(lab) -> None:
    httpx.post(f"{lab.kube.url}/_test/reset-requests", timeout=5).raise_for_status()


def mutating(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if r["method"] != "GET" and not r["dry_run"]]


def set_replicas(lab, replicas: int) -> None:
    lab.kube.store.update_scale(
        "Deployment", NAMESPACE, SERVICE, lambda s: {**s, "spec": {"replicas": replicas}}
    )


def create_hpa(lab) -> None:
    lab.kube.store.apply({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"{SERVICE}-hpa", "namespace": NAMESPACE},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": SERVICE},
                 "minReplicas": 2, "maxReplicas": 6,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 70}}}]},
    })  # fmt: skip


def hpa_bounds(lab) -> tuple[int, int]:
    found = lab.kube.store.get("HorizontalPodAutoscaler", NAMESPACE, f"{SERVICE}-hpa")
    return found["spec"]["minReplicas"], found["spec"]["maxReplicas"]


def kubectl(lab, *args: str) -> str:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", str(lab.kubeconfig), "-n", NAMESPACE, *args],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout


# --- conventions ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RUNBOOKS)
def test_runbook_follows_the_conventions(name: str) -> None:
    path = ROOT / "runbooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    description = nb.metadata["opsnb"]["description"]
    assert description and "\n" not in description
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    declared = parse_parameters(code[0].source, where=name)
    assert {"target", "service", "apply"} <= set(declared)
    assert declared["apply"].default is False and all(p.help for p in declared.values())
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None
    for cell in code[2:]:  # the steps: short calls into opsnb.runtime.procedures
        assert len(cell.source.splitlines()) <= 3, cell.source
    # every step cell follows a markdown cell saying why it matters
    for before, cell in zip(nb.cells, nb.cells[1:], strict=False):
        if cell.cell_type == "code" and cell is not code[0] and cell is not code[1]:
            assert before.cell_type == "markdown", cell.source


# --- demo and plain papermill ----------------------------------------------------------------


def test_every_runbook_runs_to_the_end_on_the_demo(tmp_path: Path) -> None:
    deploy, rollback, scale = run_many(
        [
            (
                "deploy",
                "--target",
                "demo",
                "-p",
                "service",
                "catalog",
                "-p",
                "image",
                "registry.example.com/catalog:5.0.1",
            ),
            ("rollback", "--target", "demo", "-p", "service", "catalog"),
            (
                "scale",
                "--target",
                "demo",
                "-p",
                "replicas",
                "8",
                "-p",
                "pin_hpa",
                "true",
                "-p",
                "memory_limit",
                "2Gi",
            ),
        ],  # fmt: skip
        tmp_path,
    )
    # deploy: a preview of the new image on the read-only snapshot; the bad current revision
    # of catalog is what the decision tree finds
    assert actions(deploy) == [("deploy", "previewed")]
    detail = deploy["actions"][0]["detail"]
    assert "would set image of deployment/catalog container catalog from " in detail
    assert "registry.example.com/catalog:5.0.0 to registry.example.com/catalog:5.0.1" in detail
    assert [(f["cause"], f["recommendation"]) for f in deploy["findings"]][0] == (
        "recent-deployment", "rollback",
    )  # fmt: skip
    statuses = {n: c["status"] for n, c in checks(deploy).items()}
    assert statuses["Errors in the new pods' logs"] == "fail"
    assert statuses["Smoke search"] == "ok" and statuses["Rollout"] == "ok"
    assert "error" not in statuses.values()
    # rollback: to the revision before 12 (4.9.3)
    assert actions(rollback) == [("rollback", "previewed")]
    assert "to revision 11 (registry.example.com/catalog:4.9.3)" in rollback["actions"][0]["detail"]
    assert "target revision 11" in checks(rollback)["Rollout history"]["detail"]
    # scale: the demo records no HPA; scale and resources are previewed
    assert actions(scale) == [
        ("pin-hpa", "unavailable"), ("scale", "previewed"), ("set-resources", "previewed"),
    ]  # fmt: skip
    assert "from 6 to 8 replicas" in scale["actions"][1]["detail"]
    assert "limit memory 1Gi -> 2Gi" in scale["actions"][2]["detail"]
    assert checks(scale)["Replicas ready"]["status"] == "ok"
    for result in (deploy, rollback, scale):
        assert all(c["status"] != "error" for c in result["checks"]), result["checks"]


def test_every_runbook_runs_under_plain_papermill(tmp_path: Path) -> None:
    for name in RUNBOOKS:
        done = subprocess.run(
            [str(BIN / "papermill"), str(ROOT / "runbooks" / f"{name}.ipynb"),
             str(tmp_path / f"{name}.ipynb"), "-p", "target", "demo", "-k", "python3"],
            capture_output=True, text=True, cwd=tmp_path, timeout=240,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Unable to parse" not in done.stderr  # papermill read every parameter line
        nb = nbformat.read(tmp_path / f"{name}.ipynb", as_version=4)
        kinds = [mime for _, mime, _ in scan(nb)]
        assert kinds.count(CHECK_MIME) >= 4, name
        if name != "scale":
            assert FINDING_MIME in kinds, name
        if name == "rollback":
            assert ACTION_MIME in kinds
        if (
            name == "deploy"
        ):  # no image, no manifest: nothing deployed, the current revision checked
            requested = [p for _, mime, p in scan(nb) if mime == CHECK_MIME
                         and p["name"] == "Change requested"]  # fmt: skip
            assert [p["status"] for p in requested] == ["warn"]


# --- the lab: really deploying, rolling back and scaling ---------------------------------------


def test_without_apply_nothing_mutating_reaches_the_api_server(lab, tmp_path: Path) -> None:
    lab.release("1.4.1", "deploy 1.4.1")  # a previous revision to preview a rollback to
    lab.clear()
    create_hpa(lab)
    try:
        wait_until("measured traffic with a low error rate", lambda: healthy(lab))
        manifest = copy_of_deployment(lab, image=f"{IMAGE_REPO}:1.5.0", replicas=4)
        path = tmp_path / "deployment.yaml"
        path.write_text(yaml.safe_dump(manifest))
        before = (image(lab), revision(lab), len(lab.revision_pods()))
        scale_args = ("scale", "--target", "lab", "-p", "replicas", "5", "-p", "pin_hpa", "true",
                      "-p", "cpu_request", "500m")  # fmt: skip
        reset_requests(lab)
        deploy, from_manifest, rollback, scale = run_many(
            [
                ("deploy", "--target", "lab", "-p", "image", BAD_IMAGE),
                ("deploy", "--target", "lab", "-p", "manifest", str(path)),
                ("rollback", "--target", "lab"),
                scale_args,
            ],
            tmp_path,
        )
        seen = kube_requests(lab)
        assert mutating(seen) == []
        dry = [r for r in seen if r["dry_run"]]
        assert len([r for r in dry if r["method"] == "PATCH"]) >= 5, seen
        assert (image(lab), revision(lab), len(lab.revision_pods())) == before
        assert actions(deploy) == [("deploy", "previewed")]
        assert deploy["actions"][0]["detail"] == (
            f"would set image of deployment/{SERVICE} container {SERVICE} from {GOOD_IMAGE} "
            f"to {BAD_IMAGE} (server-side dry run)"
        )
        assert actions(from_manifest) == [("deploy", "previewed")]
        assert (f"image {SERVICE} {GOOD_IMAGE} -> {IMAGE_REPO}:1.5.0; replicas 3 -> 4"
                in from_manifest["actions"][0]["detail"])  # fmt: skip
        assert actions(rollback) == [("rollback", "previewed")]
        assert f"({GOOD_IMAGE}) to revision {revision(lab) - 1} ({IMAGE_REPO}:1.4.1)" in (
            rollback["actions"][0]["detail"])  # fmt: skip
        assert actions(scale) == [
            ("pin-hpa", "previewed"), ("scale", "previewed"), ("set-resources", "previewed"),
        ]  # fmt: skip
        assert "would set hpa/my-service-hpa from min 2, max 6 to min 5, max 5" in (
            scale["actions"][0]["detail"])  # fmt: skip
        assert (
            "would scale deployment/my-service from 3 to 5 replicas"
            in scale["actions"][1]["detail"]
        )
        assert hpa_bounds(lab) == (2, 6)
        # nothing applied: the runbooks judge the current (healthy) revision
        for result in (deploy, from_manifest, rollback):
            assert [f["cause"] for f in result["findings"]] == ["healthy"], result["findings"]
    finally:
        lab.kube.store.delete("HorizontalPodAutoscaler", NAMESPACE, f"{SERVICE}-hpa")


def copy_of_deployment(lab, *, image: str, replicas: int) -> dict[str, Any]:
    current = deployment(lab)
    template = current["spec"]["template"]
    template["spec"]["containers"][0]["image"] = image
    template["metadata"]["labels"].pop("pod-template-hash", None)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": {"app": SERVICE}},
        "spec": {"replicas": replicas, "selector": current["spec"]["selector"],
                 "template": template},
    }  # fmt: skip


def test_deploy_of_a_good_image_is_applied_and_verified_healthy(lab, tmp_path: Path) -> None:
    lab.clear()
    wait_until("measured traffic with a low error rate", lambda: healthy(lab))
    new = f"{IMAGE_REPO}:1.4.3"
    revision_before = revision(lab)
    try:
        result = run("deploy", "--target", "lab", "-p", "image", new, "-p", "settle_seconds",
                     SETTLE, "--apply", out=tmp_path)  # fmt: skip
        assert actions(result) == [("deploy", "applied")]
        assert image(lab) == new and revision(lab) == revision_before + 1
        assert ready_pods(lab) == 3
        statuses = {n: c["status"] for n, c in checks(result).items()}
        assert statuses["Rollout"] == "ok" and statuses["Pods of the new revision"] == "ok"
        assert statuses["Error rate after vs before"] == "ok"
        assert statuses["Smoke database"] == "ok" and statuses["Smoke payments-provider"] == "ok"
        assert "3/3 updated, 3 available" in checks(result)["Rollout"]["detail"]
        assert [(f["cause"], f["recommendation"]) for f in result["findings"]] == [
            ("healthy", "none")
        ]
        assert f"revision {revision_before + 1} ({new})" in result["findings"][0]["evidence"][0]
        # the new revision records why it exists
        history = json.loads(kubectl(lab, "get", "rs", "-l", f"app={SERVICE}", "-o", "json"))
        causes = {rs["metadata"]["annotations"].get("kubernetes.io/change-cause")
                  for rs in history["items"]}  # fmt: skip
        assert f"opsnb deploy: set image {SERVICE}={new}" in causes
    finally:
        lab.clear()


def test_deploy_of_a_bad_image_is_found_worse(lab, tmp_path: Path) -> None:
    lab.clear()
    wait_until("measured traffic with a low error rate", lambda: healthy(lab))
    try:
        result = run("deploy", "--target", "lab", "-p", "image", BAD_IMAGE, "-p",
                     "settle_seconds", SETTLE, "--apply", out=tmp_path)  # fmt: skip
        assert actions(result) == [("deploy", "applied")] and image(lab) == BAD_IMAGE
        primary = result["findings"][0]
        assert (primary["cause"], primary["recommendation"]) == ("recent-deployment", "rollback")
        statuses = {n: c["status"] for n, c in checks(result).items()}
        assert statuses["Rollout"] == "ok"  # it rolled out; it is just bad
        assert statuses["Error rate after vs before"] == "fail"
        assert statuses["Errors in the new pods' logs"] == "fail"
        assert "BadDeployError" in checks(result)["Errors in the new pods' logs"]["detail"]
        assert any(e.startswith("error rate ") for e in primary["evidence"]), primary
    finally:
        lab.clear()


def test_rollback_apply_restores_the_good_image(lab, tmp_path: Path) -> None:
    lab.inject("bad-deploy")
    try:
        wait_until("the error rate to pass 5%", lambda: (error_rate(lab) or 0) > 0.05)
        assert image(lab).endswith("-bad")
        revision_before = revision(lab)
        result = run("rollback", "--target", "lab", "-p", "settle_seconds", SETTLE, "--apply",
                     out=tmp_path)  # fmt: skip
        assert actions(result) == [("rollback", "applied")]
        assert image(lab) == GOOD_IMAGE and revision(lab) == revision_before + 1
        assert lab.active_fault() == "none"
        assert ready_pods(lab) == 3
        statuses = {n: c["status"] for n, c in checks(result).items()}
        assert statuses["Rollout history"] == "ok" and statuses["Rollout"] == "ok"
        assert statuses["Error rate after vs before"] == "ok"
        assert [(f["cause"], f["recommendation"]) for f in result["findings"]] == [
            ("healthy", "none")
        ], result["findings"]
    finally:
        lab.clear()


def test_scale_beyond_max_replicas_is_refused_and_changes_nothing(lab, tmp_path: Path) -> None:
    reset_requests(lab)
    result = run("scale", "--target", "lab", "-p", "replicas", "25", "--apply", out=tmp_path)
    assert actions(result) == [("scale", "refused")]
    assert "25 replicas exceeds the target's max_replicas of 20" in result["actions"][0]["detail"]
    assert mutating(kube_requests(lab)) == []
    assert deployment(lab)["spec"]["replicas"] == 3


def test_scale_to_four_replicas_makes_four_ready_pods(lab, tmp_path: Path) -> None:
    try:
        result = run("scale", "--target", "lab", "-p", "replicas", "4", "--apply", out=tmp_path)
        assert actions(result) == [("scale", "applied")]
        assert "scaled deployment/my-service from 3 to 4 replicas" in result["actions"][0]["detail"]
        assert deployment(lab)["spec"]["replicas"] == 4 and ready_pods(lab) == 4
        assert checks(result)["Replicas ready"]["status"] == "ok"
        assert checks(result)["Replicas ready"]["detail"].startswith("4 of 4 replicas ready")
    finally:
        set_replicas(lab, 3)


def test_hpa_pin_and_release_round_trip_the_previous_bounds(lab, tmp_path: Path) -> None:
    create_hpa(lab)

    def hpa() -> dict[str, Any]:
        return dict(json.loads(kubectl(lab, "get", "hpa", f"{SERVICE}-hpa", "-o", "json")))

    try:
        pinned = run("scale", "--target", "lab", "-p", "replicas", "4", "-p", "pin_hpa", "true",
                     "--apply", out=tmp_path / "pin")  # fmt: skip
        assert actions(pinned) == [("pin-hpa", "applied"), ("scale", "applied")]
        spec, annotations = hpa()["spec"], hpa()["metadata"]["annotations"]
        assert (spec["minReplicas"], spec["maxReplicas"]) == (4, 4)
        assert json.loads(annotations["opsnb.io/pinned-from"]) == {"minReplicas": 2,
                                                                   "maxReplicas": 6}  # fmt: skip
        assert deployment(lab)["spec"]["replicas"] == 4 and ready_pods(lab) == 4
        assert checks(pinned)["Replicas ready"]["status"] == "ok"

        released = run("scale", "--target", "lab", "-p", "release_hpa", "true", "--apply",
                       out=tmp_path / "release")  # fmt: skip
        assert actions(released) == [("release-hpa", "applied")]
        hpa_check = checks(released)["HPA my-service-hpa"]  # read before the release
        assert "pinned by opsnb (was min 2, max 6)" in hpa_check["detail"]
        assert "set hpa/my-service-hpa from min 4, max 4 to min 2, max 6" in (
            released["actions"][0]["detail"])  # fmt: skip
        after = hpa()
        assert (after["spec"]["minReplicas"], after["spec"]["maxReplicas"]) == (2, 6)
        assert "opsnb.io/pinned-from" not in (after["metadata"].get("annotations") or {})
        assert deployment(lab)["spec"]["replicas"] == 4  # within the range: left as it is

    finally:
        lab.kube.store.delete("HorizontalPodAutoscaler", NAMESPACE, f"{SERVICE}-hpa")
        set_replicas(lab, 3)


# --- the steps in-process, against a Kubernetes test API server of their own --------------------


@pytest.fixture()
def small_target(tmp_path: Path):
    """A live target whose policy allows apply but at most 6 replicas and 2 pods a step."""
    from opsnb.config import DEFAULT_SLO, KubernetesConfig, Policy, ServiceConfig, Target
    from opsnb.lab.kubeapi import KubeAPIServer
    from opsnb.lab.orchestrator import deployment_manifest

    server = KubeAPIServer().start()
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig", context="t", namespace=NAMESPACE)
    server.store.apply(deployment_manifest(GOOD_IMAGE, "deploy 1.4.2"))
    service = ServiceConfig(SERVICE, f"app={SERVICE}", SERVICE, SERVICE, dict(DEFAULT_SLO))
    target = Target(
        name="small", kind="live", services={SERVICE: service}, default_service=SERVICE,
        kubernetes=KubernetesConfig(namespace=NAMESPACE, context="t", kubeconfig=str(kubeconfig)),
        policy=Policy(allow_apply=True, max_replicas=6, max_pods_per_action=2),
    )  # fmt: skip
    yield server, target
    server.stop()


def test_steps_respect_the_policy_limits_and_nothing_changes(small_target) -> None:
    from opsnb.runtime import procedures
    from opsnb.runtime.session import Runbook

    server, target = small_target
    rb = Runbook(target, target.service(SERVICE), runbook="scale", apply=True)
    p = procedures.current_state(rb)
    assert p.before["replicas"] == 3 and p.before["image"] == GOOD_IMAGE
    server.reset_requests()
    too_many = procedures.scale_replicas(rb, p, 7)
    too_few = procedures.scale_replicas(rb, p, 0)  # would delete 3 pods
    resources = procedures.set_resources(rb, p, cpu_request="100m")  # would replace 3 pods
    no_hpa = procedures.release_hpa(rb, p)
    outcomes = [(a.outcome, a.detail) for a in (too_many, too_few, resources, no_hpa) if a]
    assert [o for o, _ in outcomes] == ["refused"] * 3 + ["failed"]  # no HPA: failed
    assert "7 replicas exceeds the target's max_replicas of 6" in outcomes[0][1]
    assert "would delete 3 pods, more than the target's max_pods_per_action of 2" in outcomes[1][1]
    assert "replace all 3 pods, more than the target's max_pods_per_action of 2" in outcomes[2][1]
    assert "hpa/my-service-hpa" in outcomes[3][1] and "not found" in outcomes[3][1]
    assert server.mutations() == [] and not p.applied
    # within the limits: applied
    assert procedures.scale_replicas(rb, p, 2).outcome == "applied"
    applied = procedures.set_resources(rb, p, cpu_request="100m", memory_limit="1Gi")
    assert applied is not None and applied.outcome == "applied" and p.applied
    container = server.store.get("Deployment", NAMESPACE, SERVICE)["spec"]["template"]["spec"][
        "containers"][0]  # fmt: skip
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"},
                                      "limits": {"cpu": "1", "memory": "1Gi"}}  # fmt: skip
    assert procedures.watch_rollout(rb, p, 5)["state"] == "complete"
    procedures.replicas_ready(rb, p)
    assert [(c.name, c.status) for c in rb.checks][-2:] == [("Rollout", "ok"),
                                                           ("Replicas ready", "ok")]  # fmt: skip
    # an HPA that opsnb did not pin has nothing to release
    server.store.apply({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"{SERVICE}-hpa", "namespace": NAMESPACE},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": SERVICE},
                 "minReplicas": 1, "maxReplicas": 4},
    })  # fmt: skip
    release = procedures.release_hpa(rb, p)
    assert release.outcome == "failed" and "is not pinned by opsnb" in release.detail
    assert procedures.pin_hpa(rb, p, 9).detail.endswith(
        "9 replicas exceeds the target's max_replicas of 6 (policy.max_replicas of target "
        "'small'): nothing was changed"
    )
