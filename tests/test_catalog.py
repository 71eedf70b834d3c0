"""Runbook discovery and typed parameters."""

from __future__ import annotations

import nbformat
import pytest

from opsnb import catalog
from opsnb.errors import ParameterError, UnknownRunbookError, UsageError

SOURCE = """target: str = "demo"  # target name
service: str = ""  # service
window_minutes: int = 60  # minutes to look back
threshold = 0.5  # inferred float
apply: bool = False  # apply changes
"""


def make_notebook(tmp_path, source=SOURCE, tag="parameters"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Sample runbook\nmore"),
        nbformat.v4.new_code_cell(source, metadata={"tags": [tag]}),
    ]
    path = tmp_path / "sample.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_parameters_are_typed_with_help(tmp_path):
    runbook = catalog.find(str(make_notebook(tmp_path)))
    params = runbook.parameters
    assert runbook.name == "sample" and runbook.description == "Sample runbook"
    assert params["window_minutes"].type == "int" and params["window_minutes"].default == 60
    assert params["window_minutes"].help == "minutes to look back"
    assert params["threshold"].type == "float"
    assert runbook.validate({"window_minutes": "15", "threshold": "2", "apply": "yes"}) == {
        "window_minutes": 15,
        "threshold": 2.0,
        "apply": True,
    }


@pytest.mark.parametrize(
    "values, words",
    [
        ({"window_minutes": "ten"}, "expects int, got 'ten'"),
        ({"apply": "perhaps"}, "expects bool"),
        ({"nope": "1"}, "has no parameter 'nope'"),
    ],
)
def test_bad_parameters_are_named(tmp_path, values, words):
    runbook = catalog.find(str(make_notebook(tmp_path)))
    with pytest.raises(ParameterError) as info:
        runbook.validate(values)
    assert words in str(info.value)


def test_runbook_without_required_parameters_is_refused(tmp_path):
    with pytest.raises(UsageError, match="must declare"):
        catalog.find(str(make_notebook(tmp_path, source="x: int = 1\n")))
    with pytest.raises(UsageError, match="no code cell tagged 'parameters'"):
        catalog.find(str(make_notebook(tmp_path, tag="other")))


def test_unknown_runbook_lists_available():
    with pytest.raises(UnknownRunbookError) as info:
        catalog.find("does-not-exist")
    assert "high-error-rate" in str(info.value)


def test_shipped_runbooks_are_clean_and_declare_target_and_service():
    found = catalog.available()
    assert "high-error-rate" in found
    for name, path in found.items():
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), name
        assert all(not c.outputs and c.execution_count is None for c in code), name
        runbook = catalog.load(path)
        assert runbook.parameters["target"].default == "demo"
        assert runbook.description


def test_a_runbook_is_read_again_only_when_its_file_changes(tmp_path):
    path = make_notebook(tmp_path)
    first = catalog.load(path)
    assert catalog.load(path) is first  # unchanged: not read and parsed again
    make_notebook(tmp_path, SOURCE + "limit: int = 5  # a new parameter\n")
    changed = catalog.load(path)
    assert "limit" in changed.parameters and "limit" not in first.parameters
    make_notebook(tmp_path, tag="not-parameters")
    with pytest.raises(UsageError, match="no code cell tagged 'parameters'"):
        catalog.load(path)
    path.unlink()
    with pytest.raises(UsageError, match="not a readable notebook"):
        catalog.load(path)


def test_a_time_parameter_takes_only_iso_8601(tmp_path):
    path = make_notebook(tmp_path, SOURCE + 'starts_at: str = ""  # when the alert began\n')
    runbook = catalog.load(path)
    for good in ("2025-01-15T14:20:00Z", "2025-01-15T14:20:00.123+00:00", "2025-01-15 14:20", ""):
        assert runbook.validate({"starts_at": good}) == {"starts_at": good}  # still a string
    with pytest.raises(ParameterError, match=r"'starts_at' expects an ISO 8601 time .*'yesterday'"):
        runbook.validate({"starts_at": "yesterday"})
