"""Targets: config files, environment overrides, secret references."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opsnb.config import get_target, load_targets
from opsnb.errors import ConfigError, SecretError, UnknownTargetError
from opsnb.secrets import REDACTED, Redactor, SecretRef


def write_config(text: str) -> Path:
    home = Path(os.environ["OPSNB_HOME"])
    (home / "config.yaml").write_text(text)
    return home / "config.yaml"


@pytest.fixture(autouse=True)
def _clean_config():
    home = Path(os.environ["OPSNB_HOME"])
    yield
    (home / "config.yaml").unlink(missing_ok=True)


def test_demo_target_is_built_in():
    target = get_target("demo")
    assert target.kind == "snapshot"
    assert target.policy.allow_apply is False
    assert target.snapshot is not None and target.snapshot.is_dir()


def test_live_target_parsed_with_services_and_policy():
    write_config(
        """
targets:
  prod:
    kubernetes: {context: prod, namespace: production}
    prometheus: {url: "http://prom:9090/", rate_window: 2m}
    postgres: {host: db, port: 5433, user: app, password: {env: PROD_PG_PASSWORD}}
    services:
      api: {selector: "app=api,tier=web", slo: {latency_p99_seconds: 0.3}}
    policy: {allow_apply: true, automatic_actions: [high-error-rate], max_replicas: 12}
"""
    )
    target = get_target("prod")
    assert target.kind == "live"
    assert target.prometheus is not None and target.prometheus.url == "http://prom:9090"
    assert target.prometheus.rate_window == "2m"
    assert target.postgres is not None and target.postgres.port == 5433
    assert target.postgres.password == SecretRef(env="PROD_PG_PASSWORD")
    assert target.default_service == "api"
    assert target.service("api").selector == "app=api,tier=web"
    assert target.service("api").slo["latency_p99_seconds"] == 0.3
    assert target.service("api").slo["error_rate"] == 0.001  # default from the template
    assert target.policy.allow_apply and target.policy.automatic_actions == ("high-error-rate",)
    # An unconfigured service falls back to conventional names.
    other = target.service("billing")
    assert (other.selector, other.deployment) == ("app=billing", "billing")


def test_environment_overrides_a_setting(monkeypatch):
    write_config("targets:\n  prod:\n    prometheus: {url: 'http://prom:9090'}\n")
    monkeypatch.setenv("OPSNB_TARGET_PROD_PROMETHEUS_URL", "http://127.0.0.1:1")
    assert get_target("prod").prometheus.url == "http://127.0.0.1:1"


def test_literal_password_is_refused():
    write_config("targets:\n  prod:\n    postgres: {host: db, password: hunter2}\n")
    with pytest.raises(ConfigError) as info:
        load_targets()
    assert "secret reference" in str(info.value)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "text, words",
    [
        ("targets: [1, 2]", "'targets' must be a mapping"),
        ("targets:\n  x: {prometheus: {}}\n", "prometheus needs a url"),
        ("targets:\n  x: {bogus: 1}\n", "unknown settings ['bogus']"),
        ("targets:\n  x: {policy: {allow_apply: maybe}}\n", "allow_apply must be true or false"),
        ("targets: {x: {kubernetes: [", "not valid YAML"),
    ],
)
def test_malformed_config_names_the_problem(text, words):
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_targets()
    assert words in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_target_lists_known_ones():
    with pytest.raises(UnknownTargetError) as info:
        get_target("nope")
    assert "demo" in str(info.value)


def test_secret_ref_resolves_from_env_and_file(monkeypatch, tmp_path):
    monkeypatch.setenv("SOME_SECRET", "s3cr3t-value")
    assert SecretRef.parse({"env": "SOME_SECRET"}, where="x").resolve() == "s3cr3t-value"
    (tmp_path / "pw").write_text("from-file\n")
    assert SecretRef.parse(f"file:{tmp_path / 'pw'}", where="x").resolve() == "from-file"
    monkeypatch.delenv("SOME_SECRET")
    with pytest.raises(SecretError) as info:
        SecretRef(env="SOME_SECRET").resolve()
    assert "SOME_SECRET is not set" in str(info.value)


def test_redactor_scrubs_values_and_url_passwords():
    redactor = Redactor(["s3cr3t-value"])
    text = "dsn postgresql://app:other-pw@db:5432/x and s3cr3t-value inline"
    out = redactor.text(text)
    assert "s3cr3t-value" not in out and "other-pw" not in out
    assert out.count(REDACTED) == 2
    assert redactor.data({"a": ["s3cr3t-value", 1]}) == {"a": [REDACTED, 1]}
    assert redactor.parameters({"db_password": "x1", "service": "api"}) == {
        "db_password": REDACTED,
        "service": "api",
    }
