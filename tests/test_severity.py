"""The severity model: the playbook's definitions, classification at each level's boundaries,
and per-organisation configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsnb.errors import ConfigError
from opsnb.severity import (
    SEVERITIES,
    Impact,
    SeverityPolicy,
    Thresholds,
    classify,
    duration_text,
    load_policy,
    parse_duration,
    parse_level,
    response_targets,
)

# --- the playbook's definitions -------------------------------------------------------------

PLAYBOOK_TABLES = {
    1: [("Time to Acknowledge", "5 minutes"), ("Time to Assemble Team", "15 minutes"),
        ("Status Update Frequency", "Every 15 minutes"),
        ("Postmortem Required", "Yes, within 48 hours")],
    2: [("Time to Acknowledge", "15 minutes"), ("Time to Assemble Team", "30 minutes"),
        ("Status Update Frequency", "Every 30 minutes"),
        ("Postmortem Required", "Yes, within 1 week")],
    3: [("Time to Acknowledge", "1 hour"), ("Time to Investigate", "4 hours"),
        ("Status Update Frequency", "Daily"), ("Postmortem Required", "Optional")],
    4: [("Time to Acknowledge", "24 hours"), ("Resolution Time", "Next sprint"),
        ("Postmortem Required", "No")],
}  # fmt: skip

PLAYBOOK_NAMES = {
    1: ("Critical", "Complete service outage affecting all users"),
    2: ("Major", "Significant degradation affecting many users"),
    3: ("Minor", "Limited impact with workaround available"),
    4: ("Low", "Minimal impact, no immediate action needed"),
}


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_levels_carry_the_playbooks_definitions(level):
    severity = SEVERITIES[level]
    assert severity.label == f"SEV-{level}"
    assert (severity.name, severity.impact) == PLAYBOOK_NAMES[level]
    assert len(severity.examples) == 4
    assert response_targets(level).rows() == PLAYBOOK_TABLES[level]
    assert response_targets(f"SEV-{level}") == response_targets(str(level))


def test_response_targets_in_numbers():
    sev1, sev2, sev3, sev4 = (response_targets(level) for level in (1, 2, 3, 4))
    assert (sev1.acknowledge_minutes, sev1.assemble_minutes, sev1.update_every_minutes) == (
        5, 15, 15,
    )  # fmt: skip
    assert sev1.postmortem_required and sev1.postmortem_within_minutes == 48 * 60
    assert sev2.postmortem_required and sev2.postmortem_within_minutes == 7 * 24 * 60
    assert sev3.investigate_minutes == 240 and sev3.postmortem == "optional"
    assert not sev3.postmortem_required and sev3.assemble_minutes is None
    assert sev4.acknowledge_minutes == 24 * 60 and sev4.postmortem == "no"


# --- classification at the boundaries -------------------------------------------------------

HEALTHY = {"latency_p99": 0.1, "ready_pods": 3, "desired_pods": 3}

CASES = [
    # SEV-1: complete outage
    ("availability just below 10%", {**HEALTHY, "availability": 0.0999}, 1, "complete outage"),
    ("availability at 10% is not an outage", {**HEALTHY, "availability": 0.10}, 2,
     "90.00% of requests failing"),
    ("every request failing", {**HEALTHY, "error_rate": 1.0}, 1, "availability 0.00%"),
    ("no ready pods", {**HEALTHY, "error_rate": 0.0, "ready_pods": 0}, 1,
     "no ready pods (0 of 3 desired)"),
    ("declared down", {**HEALTHY, "error_rate": 0.0, "service_down": True}, 1,
     "the service is down"),
    # SEV-2: significant degradation
    ("just over 10% of requests failing", {**HEALTHY, "error_rate": 0.1001}, 2,
     "10.01% of requests failing (more than 10%)"),
    ("exactly 10% failing is limited", {**HEALTHY, "error_rate": 0.10}, 3, "intermittent errors"),
    ("over 10% of users affected", {**HEALTHY, "error_rate": 0.02, "affected_share": 0.11}, 2,
     "11.00% of users affected"),
    ("SLO breached over its period, errors now",
     {**HEALTHY, "error_rate": 0.002, "slo_period_availability": 0.9989}, 2,
     "SLO breached: availability 99.890% below the 99.9% target"),
    ("SLO met exactly, errors now",
     {**HEALTHY, "error_rate": 0.002, "slo_period_availability": 0.999}, 3,
     "intermittent errors"),
    ("SLO breach given outright, slow now",
     {**HEALTHY, "error_rate": 0.0, "latency_p99": 0.6, "slo_breach": True}, 2,
     "SLO breached: availability below the 99.9% target"),
    ("SLO breached, no impact now",
     {**HEALTHY, "error_rate": 0.0, "slo_period_availability": 0.99}, 4,
     "no impact now: error rate 0.00% below the SLO's 0.1%, p99 100 ms within 500 ms, 3 of 3 "
     "pods ready; SLO breached: availability 99.000% below the 99.9% target over its period"),
    ("three services affected", {**HEALTHY, "error_rate": 0.0, "affected_services": 3}, 2,
     "3 services affected"),
    ("two services affected", {**HEALTHY, "error_rate": 0.0, "affected_services": 2}, 4,
     "no SLO breach"),
    # SEV-3: limited impact
    ("errors at the SLO error rate", {**HEALTHY, "error_rate": 0.001}, 3,
     "intermittent errors: 0.10% of requests failing"),
    ("errors under the SLO error rate", {**HEALTHY, "error_rate": 0.00099}, 4, "no SLO breach"),
    ("p99 at the SLO", {**HEALTHY, "error_rate": 0.0, "latency_p99": 0.5}, 3,
     "performance degradation: p99 500 ms over the 500 ms SLO"),
    ("p99 under the SLO", {**HEALTHY, "error_rate": 0.0, "latency_p99": 0.499}, 4,
     "no SLO breach"),
    ("some pods not ready", {**HEALTHY, "error_rate": 0.0, "ready_pods": 2}, 3,
     "2 of 3 pods ready"),
    ("an alert firing", {**HEALTHY, "error_rate": 0.0, "firing_alerts": ("HighLatency",)}, 3,
     "alerts firing: HighLatency"),
    ("a dependency down", {**HEALTHY, "error_rate": 0.0, "dependencies_down": ("search",)}, 3,
     "dependency unavailable: search"),
    ("nothing measured", {}, 3, "the error rate could not be measured"),
    # SEV-4: minimal
    ("all within the SLOs", {**HEALTHY, "error_rate": 0.0}, 4,
     "no SLO breach: error rate 0.00% below the SLO's 0.1%, p99 100 ms within 500 ms, "
     "3 of 3 pods ready"),
]  # fmt: skip


@pytest.mark.parametrize("what, measured, level, reason", CASES, ids=[c[0] for c in CASES])
def test_classification_boundaries(what, measured, level, reason):
    result = classify(Impact(**measured))
    assert result.level == level, result.summary()
    assert result.label == f"SEV-{level}"
    assert any(reason in r for r in result.reasons), result.reasons
    assert result.summary().startswith(f"SEV-{level} ({SEVERITIES[level].name}): ")
    assert result.response == response_targets(level)


def test_the_demo_payments_incident_is_a_significant_degradation():
    """payments at 14:30: 16.3% of requests failing, p99 2.4 s, every pod ready -> SEV-2."""
    result = classify(Impact(error_rate=0.163, latency_p99=2.393, ready_pods=6, desired_pods=6))
    assert result.label == "SEV-2"
    assert result.reasons == ("16.30% of requests failing (more than 10%)",)
    # what else was seen stays on record, at its own level
    assert [level for level, _ in result.signals] == [2, 3, 3]
    assert result.unmeasured == ("SLO-period availability",)


def test_availability_and_error_rate_stand_in_for_each_other():
    assert classify(Impact(availability=0.85)).level == 2
    assert classify(Impact(error_rate=0.95)).level == 1
    # both given: availability decides the outage, the error rate the share failing
    assert classify(Impact(error_rate=0.5, availability=0.05)).level == 1


def test_the_highest_level_wins_and_only_its_reasons_are_given():
    result = classify(Impact(error_rate=0.3, ready_pods=0, desired_pods=3, latency_p99=2.0))
    assert result.level == 1
    assert result.reasons == ("no ready pods (0 of 3 desired)",)
    assert {level for level, _ in result.signals} == {1, 2, 3}


def test_thresholds_change_the_boundaries():
    strict = SeverityPolicy(thresholds=Thresholds(major_affected_share=0.05))
    assert classify(Impact(error_rate=0.06), strict).level == 2
    assert classify(Impact(error_rate=0.06)).level == 3
    lenient = SeverityPolicy(thresholds=Thresholds(minor_error_ratio=10))
    assert classify(Impact(error_rate=0.005, **HEALTHY), lenient).level == 4
    no_alerts = SeverityPolicy(thresholds=Thresholds(minor_firing_alerts=False))
    assert classify(Impact(error_rate=0.0, firing_alerts=("X",), **HEALTHY), no_alerts).level == 4
    cautious = SeverityPolicy(thresholds=Thresholds(unmeasured_level=2))
    assert classify(Impact(), cautious).level == 2


# --- configuration --------------------------------------------------------------------------

OVERRIDE = """\
targets: {}
severity:
  thresholds:
    major_affected_share: 0.05
    outage_availability: 0.2
  levels:
    SEV-2:
      acknowledge: 10m
      postmortem_within: 72h
    3:
      postmortem: required
      postmortem_within: 2w
      update_every: 4h
"""


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSNB_HOME", str(tmp_path))
    monkeypatch.delenv("OPSNB_SEVERITY", raising=False)
    return tmp_path


def test_no_file_means_the_playbooks_defaults(home):
    policy = load_policy()
    assert policy.thresholds == Thresholds()
    assert policy.levels == SEVERITIES


def test_config_dir_file_overrides_thresholds_and_response_targets(home):
    (home / "severity.yaml").write_text(OVERRIDE)
    policy = load_policy()
    assert policy.source == str(home / "severity.yaml")
    assert policy.thresholds.major_affected_share == 0.05
    assert policy.thresholds.outage_availability == 0.2
    assert policy.thresholds.major_affected_services == 3  # untouched
    assert classify(Impact(error_rate=0.06), policy).label == "SEV-2"
    assert classify(Impact(availability=0.15), policy).label == "SEV-1"
    assert response_targets(2, policy).rows() == [
        ("Time to Acknowledge", "10 minutes"), ("Time to Assemble Team", "30 minutes"),
        ("Status Update Frequency", "Every 30 minutes"),
        ("Postmortem Required", "Yes, within 72 hours"),
    ]  # fmt: skip
    sev3 = response_targets("SEV-3", policy)
    assert sev3.postmortem_required and sev3.postmortem_within_minutes == 2 * 10080
    assert ("Status Update Frequency", "Every 4 hours") in sev3.rows()
    assert response_targets(1, policy) == response_targets(1)  # untouched


def test_opsnb_severity_names_another_file(home, tmp_path_factory, monkeypatch):
    other = tmp_path_factory.mktemp("org") / "org-severity.yaml"
    other.write_text("severity:\n  thresholds: {major_affected_share: 0.5}\n")
    (home / "severity.yaml").write_text(OVERRIDE)
    monkeypatch.setenv("OPSNB_SEVERITY", str(other))
    assert load_policy().thresholds.major_affected_share == 0.5
    monkeypatch.setenv("OPSNB_SEVERITY", str(other.with_name("missing.yaml")))
    with pytest.raises(ConfigError, match="OPSNB_SEVERITY names a file that does not exist"):
        load_policy()


def test_a_file_without_a_severity_section_means_the_defaults(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("targets: {}\n")
    assert load_policy(path).thresholds == Thresholds()


BAD = [
    ("severity: {thresholds: {major_share: 0.2}}",
     "severity.thresholds: unknown key 'major_share'; known: outage_availability"),
    ("severity: {levels: {SEV-2: {ack: 5m}}}",
     "severity.levels.SEV-2: unknown key 'ack'; known: name, impact, examples, acknowledge"),
    ("severity: {level: {}}", "severity: unknown key 'level'; known: thresholds, levels"),
    ("severity: {levels: {SEV-5: {acknowledge: 5m}}}", "unknown level 'SEV-5'"),
    ("severity: {levels: {SEV-1: {acknowledge: soon}}}",
     "severity.levels.SEV-1.acknowledge: not a duration: 'soon'"),
    ("severity: {levels: {SEV-1: {postmortem: maybe}}}",
     "severity.levels.SEV-1.postmortem must be one of required, optional, no"),
    ("severity: {thresholds: {outage_availability: 1.5}}",
     "severity.thresholds.outage_availability is a share between 0 and 1"),
    ("severity: {thresholds: {major_affected_services: 0}}",
     "severity.thresholds.major_affected_services must be a whole number of at least 1"),
    ("severity: {thresholds: {minor_firing_alerts: 'no'}}",
     "severity.thresholds.minor_firing_alerts must be true or false"),
    ("severity: {thresholds: {unmeasured_level: 7}}",
     "severity.thresholds.unmeasured_level: not a severity level"),
    ("severity: [1, 2]", "'severity' must be a mapping"),
    ("severity: {levels: {SEV-1: {examples: outage}}}",
     "severity.levels.SEV-1.examples must be a list of text"),
    ("severity: {thresholds: [", "not valid YAML"),
]  # fmt: skip


@pytest.mark.parametrize("text, message", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_config_is_a_clear_error_naming_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "severity.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert info.value.exit_code == 2


def test_an_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_policy(Path(tmp_path / "nope.yaml"))


@pytest.mark.parametrize(
    "value, level", [(1, 1), ("2", 2), ("SEV-3", 3), ("sev4", 4), ("Sev 1", 1)]
)
def test_parse_level(value, level):
    assert parse_level(value) == level


@pytest.mark.parametrize("value", [0, 5, "SEV-0", "critical", True, None])
def test_parse_level_refuses(value):
    with pytest.raises(ValueError, match="not a severity level"):
        parse_level(value)


@pytest.mark.parametrize(
    "value, minutes, text",
    [(5, 5, "5 minutes"), ("1h", 60, "1 hour"), ("48h", 2880, "48 hours"),
     ("1w", 10080, "1 week"), ("2d", 2880, "48 hours"), ("90m", 90, "90 minutes")],
)  # fmt: skip
def test_durations(value, minutes, text):
    assert parse_duration(value) == minutes
    assert duration_text(minutes) == text


@pytest.mark.parametrize("value", ["0m", -5, "soon", "5 hours", True])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)
