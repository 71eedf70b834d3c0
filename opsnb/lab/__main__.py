"""``python -m opsnb.lab``: run a lab in the foreground until Ctrl-C.

It writes the ``lab`` target into the opsnb config dir, exports the PostgreSQL password to
its own environment and prints how to export it in another shell and how to inject faults.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from ..config import config_dir
from .orchestrator import FAULTS, PASSWORD_ENV, TARGET_NAME, Lab
from .processes import ServiceStartError


def main(argv: list[str] | None = None) -> int:
    faults = "\n".join(f"  {name:<17}{what}" for name, what in FAULTS.items())
    parser = argparse.ArgumentParser(
        prog="python -m opsnb.lab",
        description=__doc__,
        epilog=f"faults (--fault NAME, or POST <control>/fault/NAME):\n{faults}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=config_dir() / "lab",
        help="where the lab keeps its data and logs (default: %(default)s)",
    )
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help="opsnb config dir to write targets.d/lab.yaml into",
    )
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--rps", type=float, default=20.0, help="background requests per second")
    parser.add_argument("--no-alertmanager", action="store_true")
    parser.add_argument(
        "--fault",
        choices=list(FAULTS),
        default="none",
        metavar="NAME",
        help="fault to inject right after start (see below; default: %(default)s)",
    )
    args = parser.parse_args(argv)

    lab = Lab(args.workdir, with_alertmanager=not args.no_alertmanager, rps=args.rps,
              control_port=args.control_port)  # fmt: skip
    print(f"starting the opsnb lab in {args.workdir} ...", flush=True)
    try:
        lab.start()
    except ServiceStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stopped = threading.Event()
    # SIGTERM ends the lab as cleanly as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        target_file = lab.write_target(args.config_dir or config_dir())
        if args.fault != "none":
            lab.inject(args.fault)
        urls = lab.urls()
        print(f"target {TARGET_NAME!r} written to {target_file}")
        for name, url in urls.items():
            print(f"  {name:<19}{url}")
        print(f"  {'kubeconfig':<19}{lab.kubeconfig}")
        print()
        print("In another shell, before using the target:")
        print(f"  export {PASSWORD_ENV}='{lab.pg_password}'")
        print(f"  kubectl --kubeconfig {lab.kubeconfig} get pods")
        print("Inject or clear a fault:")
        for name, what in FAULTS.items():
            print(f"  curl -X POST {lab.control_url}/fault/{name}    # {what}")
        print(f"  curl {lab.control_url}/status")
        print("Ctrl-C stops the lab.", flush=True)
        while not stopped.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping the lab ...", flush=True)
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
