"""The conda environment and the pip install ask for the same packages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from PyPI names.
CONDA_TO_PYPI = {
    "python-kubernetes": "kubernetes",
    "redis-py": "redis",
    "types-pyyaml": "types-PyYAML",
}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def split(spec: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", spec)
    assert match, spec
    return normalise(match.group(1)), match.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = dict(split(s) for s in project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    for item in env["dependencies"]:
        if not isinstance(item, str):
            continue  # the pip section installs opsnb itself
        name, version = split(item)
        if name in ("python", "pip"):
            continue
        conda[normalise(CONDA_TO_PYPI.get(name, name))] = version
    assert conda == pip


def test_readme_documents_every_dependency():
    readme = (ROOT / "README.md").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        name = split(spec)[0]
        assert f"`{name}`" in readme.lower(), f"README does not say why {name} is needed"
