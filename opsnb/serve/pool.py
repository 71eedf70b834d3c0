"""A pool of warm kernels: started in the background, each used for one run, then discarded.

Every kernel is an ``opsnb.engine.kernels.WarmKernel`` launched with ``OPSNB_MODE=automated``
and the serve preload (pandas, matplotlib, opsnb.runtime and the backends' client libraries),
so a run never waits for a kernel to start or for those imports. ``take()`` hands out the
oldest kernel that finished warming and the pool starts a replacement; a kernel is never given
to a second run, so no state leaks between runs.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from ..engine.kernels import WarmKernel


class KernelPool:
    def __init__(
        self,
        size: int,
        *,
        preload: str,
        env: dict[str, str] | None = None,
        idle: Callable[[], bool] | None = None,
    ) -> None:
        self.size = max(0, size)
        # Warming a kernel costs a core for a second or two: while runs execute and a warm
        # kernel is still ready, the pool waits to refill instead of slowing those runs.
        self.idle = idle or (lambda: True)
        self.preload = preload
        self.env = {"OPSNB_MODE": "automated", **(env or {})}
        self._kernels: deque[WarmKernel] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._fill, name="opsnb-kernel-pool", daemon=True)
        self.started = 0  # kernels launched, for metrics
        self.failed = 0

    def start(self) -> KernelPool:
        self._thread.start()
        return self

    def _launch(self) -> WarmKernel:
        self.started += 1
        return WarmKernel(env=self.env, preload=self.preload)

    def _fill(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (
                    len(self._kernels) >= self.size or (self._kernels and not self.idle())
                ):
                    self._cond.wait(0.1)
                if self._closed:
                    return
            try:
                kernel = self._launch()
            except Exception:  # cannot even launch: wait before trying again
                self.failed += 1
                time.sleep(1.0)
                continue
            with self._cond:
                if self._closed:
                    kernel.shutdown()
                    return
                self._kernels.append(kernel)
                self._cond.notify_all()

    def take(self, timeout: float = 120.0) -> WarmKernel:
        """A kernel for one run: the oldest warm one; waits for one that is warming."""
        if self.size == 0:
            return self._launch()
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                if self._closed:
                    raise RuntimeError("the kernel pool is closed")
                self._drop_failed()
                chosen = next((k for k in self._kernels if _is_warm(k) and k.alive()), None)
                if chosen is None and time.monotonic() > deadline and self._kernels:
                    chosen = self._kernels[0]
                if chosen is not None:
                    self._kernels.remove(chosen)
                    self._cond.notify_all()
                    return chosen
            if time.monotonic() > deadline:
                return self._launch()
            time.sleep(0.01)

    def _drop_failed(self) -> None:
        """Drop kernels whose warm-up failed or that died since (called with the lock held)."""
        for kernel in list(self._kernels):
            if _failed(kernel) or (_is_warm(kernel) and not kernel.alive()):
                self._kernels.remove(kernel)
                self.failed += 1
                kernel.shutdown(wait=False)
                self._cond.notify_all()

    def stats(self) -> dict[str, int]:
        with self._cond:
            warm = sum(1 for k in self._kernels if _is_warm(k))
            return {
                "size": self.size,
                "ready": warm,
                "warming": len(self._kernels) - warm,
                "started": self.started,
                "failed": self.failed,
            }

    def close(self) -> None:
        with self._cond:
            self._closed = True
            kernels = list(self._kernels)
            self._kernels.clear()
            self._cond.notify_all()
        for kernel in kernels:
            kernel.shutdown()


def _is_warm(kernel: WarmKernel) -> bool:
    try:
        kernel.wait(timeout=0)
    except Exception:
        return False
    return True


def _failed(kernel: WarmKernel) -> bool:
    try:
        kernel.wait(timeout=0)
    except TimeoutError:
        return False
    except Exception:
        return True
    return False
