"""Static checks of the deployment files shipped in ``deploy/``: no servers, no cluster.

``promtool`` and ``amtool`` validate the Prometheus rules and the Alertmanager configuration;
every alert names an existing runbook; the Kubernetes manifests deserialize with the official
client, the diagnosis identity is read-only, the apply identity is not the Deployment's, and
the webhook token comes from a Secret."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client

from opsnb.config import parse_target
from opsnb.serve import settings as serve_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "opsnb-alerts.yaml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
KUBE = DEPLOY / "kubernetes"
RUNBOOKS = ROOT / "runbooks"

READ_VERBS = {"get", "list", "watch"}
EXPECTED_RUNBOOKS = {
    "HighErrorRate": "high-error-rate",
    "HighLatency": "high-latency",
    "DatabaseConnectionPoolExhausted": "db-connection-pool-exhausted",
    "PodCrashLooping": "pod-crash-looping",
}


def _tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    assert path, f"{name} is not installed: a broken environment, not a reason to skip"
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _manifest_files() -> list[Path]:
    return sorted(p for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")


def _objects() -> list[dict[str, Any]]:
    return [
        obj
        for path in _manifest_files()
        for obj in yaml.safe_load_all(path.read_text())
        if obj is not None
    ]


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _deployment() -> dict[str, Any]:
    return _one("Deployment", "opsnb")


def _container() -> dict[str, Any]:
    (container,) = _deployment()["spec"]["template"]["spec"]["containers"]
    return container


# --- Prometheus ---------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    proc = _run(_tool("promtool"), "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 4 rules found" in proc.stdout


def test_alerts_are_the_four_common_issues_with_template_timing() -> None:
    by_name = {rule["alert"]: rule for rule in _rules()}
    assert set(by_name) == set(EXPECTED_RUNBOOKS)
    expected = {
        "HighErrorRate": ("2m", "critical"),
        "HighLatency": ("5m", "warning"),
        "DatabaseConnectionPoolExhausted": ("1m", "critical"),
        "PodCrashLooping": ("5m", "critical"),
    }
    for name, (for_, severity) in expected.items():
        assert by_name[name]["for"] == for_, name
        assert by_name[name]["labels"]["severity"] == severity, name
        assert by_name[name]["labels"]["service"] == "my-service", name
    assert 'service="my-service"' in by_name["HighErrorRate"]["expr"]


@pytest.mark.parametrize("alert", sorted(EXPECTED_RUNBOOKS))
def test_alert_names_an_existing_runbook(alert: str) -> None:
    rule = next(r for r in _rules() if r["alert"] == alert)
    runbook = rule["labels"]["runbook"]
    assert runbook == EXPECTED_RUNBOOKS[alert]
    assert (RUNBOOKS / f"{runbook}.ipynb").is_file(), f"no runbooks/{runbook}.ipynb"
    annotations = rule["annotations"]
    assert annotations["summary"] and annotations["description"]
    url = urlsplit(annotations["runbook_url"])
    assert url.scheme == "https" and not url.fragment
    last = url.path.rsplit("/", 1)[-1]
    assert last.endswith(".ipynb")
    assert last.removesuffix(".ipynb") == runbook


# --- Alertmanager -------------------------------------------------------------------------


def test_amtool_check_config() -> None:
    # check-config does not read credentials_file, so the secret need not exist here.
    proc = _run(_tool("amtool"), "check-config", str(ALERTMANAGER))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_alertmanager_sends_to_opsnb_with_a_bearer_file() -> None:
    doc = yaml.safe_load(ALERTMANAGER.read_text())
    assert doc["route"]["group_by"] == ["alertname", "service"]
    (receiver,) = [r for r in doc["receivers"] if r["name"] == "opsnb"]
    (hook,) = receiver["webhook_configs"]
    assert hook["url"] == "http://opsnb.monitoring.svc:9095/webhook/alertmanager"
    assert hook["send_resolved"] is True
    auth = hook["http_config"]["authorization"]
    assert auth == {"type": "Bearer", "credentials_file": "/etc/alertmanager/secrets/opsnb-token"}


# --- Kubernetes ---------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in _manifest_files())


def test_manifests_deserialize_with_the_kubernetes_client() -> None:
    api = client.ApiClient()
    kinds = set()
    for obj in _objects():
        group_version = obj["apiVersion"]
        version = group_version.rsplit("/", 1)[-1]
        type_name = f"{version.capitalize()}{obj['kind']}"
        assert hasattr(client, type_name), f"no client model {type_name}"
        model = api.deserialize(json.dumps(obj), type_name, "application/json")
        assert isinstance(model, getattr(client, type_name))
        # A round trip loses unknown (misspelled) fields: it must give the manifest back.
        assert api.sanitize_for_serialization(model) == obj, (obj["kind"], obj["metadata"])
        kinds.add(obj["kind"])
    assert {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Secret",
        "ConfigMap",
        "Deployment",
        "Service",
    } <= kinds


def _roles_bound_to(account: str) -> list[dict[str, Any]]:
    roles = []
    for binding in _objects():
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if any(
            s["kind"] == "ServiceAccount" and s["name"] == account
            for s in binding.get("subjects", [])
        ):
            ref = binding["roleRef"]
            roles.append(_one(ref["kind"], ref["name"]))
    return roles


def test_diagnose_account_is_read_only() -> None:
    roles = _roles_bound_to("opsnb-diagnose")
    assert roles, "opsnb-diagnose is bound to no role"
    granted: dict[str, set[str]] = {}
    for role in roles:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= READ_VERBS, (role["metadata"]["name"], rule)
            assert "*" not in rule["resources"]
            for resource in rule["resources"]:
                granted.setdefault(resource, set()).update(rule["verbs"])
    for resource in (
        "pods",
        "pods/log",
        "events",
        "deployments",
        "replicasets",
        "configmaps",
        "horizontalpodautoscalers",
    ):
        assert granted.get(resource) == READ_VERBS, resource


def test_apply_account_is_separate_and_limited_to_patch() -> None:
    _one("ServiceAccount", "opsnb-apply")
    writes = [
        rule
        for role in _roles_bound_to("opsnb-apply")
        for rule in role["rules"]
        if set(rule["verbs"]) - READ_VERBS
    ]
    assert writes
    resources = set()
    for rule in writes:
        assert set(rule["verbs"]) == {"patch"}, rule
        resources.update(rule["resources"])
    assert resources == {"deployments", "deployments/scale", "horizontalpodautoscalers"}
    pod = _deployment()["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "opsnb-diagnose"
    assert pod["serviceAccountName"] != "opsnb-apply"
    assert pod["automountServiceAccountToken"] is True


def test_token_comes_from_a_secret_never_a_literal() -> None:
    container = _container()
    (token,) = [e for e in container["env"] if e["name"] == "OPSNB_SERVE_TOKEN"]
    assert "value" not in token
    ref = token["valueFrom"]["secretKeyRef"]
    secret = _one("Secret", ref["name"])
    assert ref["key"] in secret.get("stringData", {}) | secret.get("data", {})
    assert not any(e["name"] == "OPSNB_SERVE_TOKEN_REF" for e in container["env"])


def test_deployment_runs_serve_hardened() -> None:
    container = _container()
    pod = _deployment()["spec"]["template"]["spec"]
    argv = container.get("command", []) + container["args"]
    assert argv == ["opsnb", "serve", "--host", "0.0.0.0", "--port", "9095"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["requests"] and container["resources"]["limits"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    config = yaml.safe_load(_one("ConfigMap", "opsnb-config")["data"]["config.yaml"])
    data_dir = config["serve"]["data_dir"]
    (data_mount,) = [p for p in mounts if data_dir.startswith(p + "/") or data_dir == p]
    assert not mounts[data_mount].get("readOnly", False)
    service = _one("Service", "opsnb")
    assert [p["port"] for p in service["spec"]["ports"]] == [9095]
    assert service["spec"]["selector"].items() <= pod_labels().items()


def pod_labels() -> dict[str, str]:
    return _deployment()["spec"]["template"]["metadata"]["labels"]


def test_config_map_is_a_valid_opsnb_config() -> None:
    data = _one("ConfigMap", "opsnb-config")["data"]
    config = yaml.safe_load(data["config.yaml"])
    settings = serve_settings.parse(config["serve"])
    assert settings.port == 9095
    assert settings.default_target in config["targets"]
    for name, spec in config["targets"].items():
        target = parse_target(name, spec, source="deploy/kubernetes/configmap.yaml")
        assert target.policy.allow_apply is False
        assert target.kubernetes is not None
    kubeconfig = yaml.safe_load(data["in-cluster-kubeconfig.yaml"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://kubernetes.default.svc"
    path = config["targets"]["prod"]["kubernetes"]["kubeconfig"]
    mounts = {m["mountPath"] for m in _container()["volumeMounts"]}
    assert str(Path(path).parent) in mounts
    assert Path(path).name in data
