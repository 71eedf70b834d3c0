"""Shared pytest fixtures.

Real services (PostgreSQL, Redis, Prometheus, Alertmanager) are started once per session on
loopback ports by ``opsnb.lab.processes``. A service that cannot start FAILS the tests that
use it, with the service's log tail: a missing service is a broken environment, not a reason
to skip.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsnb.lab import processes


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep caches and config out of the user's home: matplotlib's font cache, Jupyter's
    runtime files and opsnb's config all go to session temp folders."""
    # Outside pytest's basetemp: pytest deletes old basetemps when other sessions start, and
    # a kernel whose runtime folder vanishes dies at start-up.
    base = Path(tempfile.mkdtemp(prefix="opsnb-test-env-"))
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (
            ("MPLCONFIGDIR", "mpl"),
            ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
            ("OPSNB_HOME", "opsnb-home"),
        ):
            path = base / sub
            path.mkdir()
            mp.setenv(var, str(path))
        mp.delenv("OPSNB_CONFIG", raising=False)
        yield
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def lab_workdir() -> Iterator[Path]:
    """Where the session's services keep their data (outside pytest's rotating basetemp)."""
    path = Path(tempfile.mkdtemp(prefix="opsnb-test-services-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _start(what: str, start, *args, **kwargs):
    try:
        return start(*args, **kwargs)
    except processes.ServiceStartError as exc:
        pytest.fail(f"could not start {what} for the tests:\n{exc}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_server(lab_workdir: Path) -> Iterator[processes.Postgres]:
    server = _start("PostgreSQL", processes.start_postgres, lab_workdir / "pg")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(lab_workdir: Path) -> Iterator[processes.Redis]:
    server = _start("Redis", processes.start_redis, lab_workdir / "redis")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def alertmanager_server(lab_workdir: Path) -> Iterator[processes.Alertmanager]:
    server = _start("Alertmanager", processes.start_alertmanager, lab_workdir / "alertmanager")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prometheus_server(lab_workdir: Path) -> Iterator[processes.Prometheus]:
    """Prometheus scraping nothing; use ``.reconfigure(scrape_targets=[...])`` to add targets
    (new targets take about 5 s: Prometheus throttles service-discovery updates)."""
    server = _start("Prometheus", processes.start_prometheus, lab_workdir / "prometheus")
    yield server
    server.stop()


# --- fixtures added by other modules' authors go below this line -----------------------------


@pytest.fixture(scope="session")
def lab(lab_workdir: Path, _isolated_env: None) -> Iterator[Any]:
    """The whole lab, once per session, with its target ``lab`` written to OPSNB_HOME.

    Tests that inject a fault clear it before they finish, so the next test starts healthy.
    """
    import os

    from opsnb.lab.orchestrator import Lab

    the_lab = Lab(lab_workdir / "whole-lab", rps=30)
    try:
        the_lab.start()
    except Exception as exc:
        pytest.fail(f"the lab did not start: {exc}", pytrace=False)
    the_lab.write_target(os.environ["OPSNB_HOME"])
    yield the_lab
    the_lab.stop()
