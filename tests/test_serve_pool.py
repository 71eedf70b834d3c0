"""The warm kernel pool: a kernel that died while waiting is never handed to a run."""

from __future__ import annotations

import os
import signal
import time

import pytest

from opsnb.errors import ConfigError
from opsnb.serve import settings as serve_settings
from opsnb.serve.pool import KernelPool


def wait_for(what: str, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_kernel_that_died_in_the_pool_is_replaced_not_handed_out() -> None:
    pool = KernelPool(1, preload="import os\n").start()
    try:
        wait_for("a warm kernel", lambda: pool.stats()["ready"] == 1)
        (dead,) = list(pool._kernels)
        os.kill(dead.km.provisioner.process.pid, signal.SIGKILL)  # e.g. the OOM killer
        wait_for("the process to go", lambda: not dead.alive(), timeout=10)
        taken = pool.take(timeout=60)
        try:
            assert taken is not dead and taken.alive()
            taken.wait()
            assert pool.stats()["failed"] == 1
        finally:
            taken.shutdown()
    finally:
        pool.close()


def test_a_preload_that_fails_leaves_a_working_kernel_and_says_why() -> None:
    pool = KernelPool(1, preload="import no_such_module_here\n").start()
    try:
        kernel = pool.take(timeout=60)
        try:
            kernel.wait()
            assert kernel.alive()
            assert kernel.preload_error is not None
            assert "No module named 'no_such_module_here'" in kernel.preload_error
        finally:
            kernel.shutdown()
    finally:
        pool.close()


def test_preload_modules_must_exist() -> None:
    with pytest.raises(ConfigError, match=r"serve.preload: no module named 'opsnb.nope'"):
        serve_settings.parse({"preload": "opsnb.runtime, opsnb.nope"})
    assert (
        serve_settings.parse({"preload": "opsnb.runtime, httpx"}).preload == "opsnb.runtime, httpx"
    )
