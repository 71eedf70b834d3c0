"""Start and stop real service processes on loopback: PostgreSQL, Redis, Prometheus, Alertmanager.

Each ``start_*`` function takes a working folder and a port (0 picks a free loopback port),
waits until the service really answers, and returns a small handle with the connection
facts and ``stop()``. Every process runs in its own process group so ``stop()`` (or the
atexit hook, as a last resort) kills it together with any children; nothing outlives the
Python process that started it.

A missing binary raises :class:`ServiceStartError` naming the Debian package to install; a
service that does not become ready in time raises it with the tail of the service's log.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..errors import OpsnbError

PG_BIN = Path(os.environ.get("OPSNB_PG_BIN", "/usr/lib/postgresql/15/bin"))

# binary -> Debian package that provides it (said in the error when it is missing)
PACKAGES = {
    "postgres": "postgresql-15",
    "initdb": "postgresql-15",
    "redis-server": "redis-server",
    "prometheus": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
}


class ServiceStartError(OpsnbError):
    """A lab service could not be started: binary missing, it exited, or it never got ready."""

    def __init__(self, service: str, message: str, *, log_tail: str = "") -> None:
        self.service = service
        self.log_tail = log_tail
        text = f"{service}: {message}"
        if log_tail:
            text += f"\n--- last lines of the {service} log ---\n{log_tail}"
        super().__init__(text)


# --- process bookkeeping ------------------------------------------------------------------

_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def _kill_group(proc: subprocess.Popen[bytes], first: int, grace: float) -> None:
    """Signal the process group, wait ``grace`` seconds, then SIGKILL whatever is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # Children may survive their leader (e.g. postgres backends); the group id stays valid
    # as long as any member lives, so always finish with SIGKILL to the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    with _LIVE_LOCK:
        _LIVE.discard(proc)


@atexit.register
def _kill_all() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        _kill_group(proc, signal.SIGKILL, 1.0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _binary(name: str, path: Path | None = None) -> str:
    found = str(path) if path is not None and path.is_file() else shutil.which(name)
    if not found:
        where = f" (looked for {path})" if path is not None else ""
        raise ServiceStartError(
            name,
            f"binary {name!r} not found{where}; install the Debian package "
            f"{PACKAGES.get(name, name)!r} (apt-get install {PACKAGES.get(name, name)})",
        )
    return found


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Service:
    """What every handle has: the process, its log and a way to stop it."""

    name: str
    host: str
    port: int
    workdir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] = field(repr=False)
    _stop_signal: int = field(default=signal.SIGTERM, repr=False)
    _cleanup: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the service and its whole process group; safe to call twice."""
        _kill_group(self.proc, self._stop_signal, timeout)
        while self._cleanup:
            with contextlib.suppress(Exception):
                self._cleanup.pop()()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGKILL it when the thread that spawned it dies.

    atexit does not run when the Python process is killed (SIGTERM from a CI timeout, SIGKILL),
    so this is what keeps a killed test run from leaking servers. The flip side: start
    services from a thread that lives as long as they should (the main thread, as pytest does).
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except Exception:
        pass  # not Linux: fall back to stop() and atexit


def _spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    cwd: Path,
    user: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        kwargs: dict[str, Any] = {}
        if user is not None:
            pw = pwd.getpwnam(user)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            process_group=0,
            preexec_fn=_die_with_parent,
            **kwargs,
        )
    with _LIVE_LOCK:
        _LIVE.add(proc)
    return proc


def _wait_ready(
    name: str,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    probe: Callable[[], bool],
    timeout: float,
) -> None:
    """Poll ``probe`` until it returns True; fail fast if the process exits."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    last_error = ""
    while True:
        if proc.poll() is not None:
            _kill_group(proc, signal.SIGKILL, 1.0)
            raise ServiceStartError(
                name,
                f"exited with status {proc.returncode} before it was ready",
                log_tail=_tail(log_path),
            )
        try:
            if probe():
                return
        except Exception as exc:  # the probe's failures are "not ready yet"
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            _kill_group(proc, signal.SIGKILL, 1.0)
            why = f" (last probe error: {last_error})" if last_error else ""
            raise ServiceStartError(
                name, f"not ready after {timeout:.0f} s{why}", log_tail=_tail(log_path)
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def _start_with_port_retry(port: int, start: Callable[[int], Service]) -> Service:
    """Start on ``port``; when the port was picked for us, retry once or twice if another
    process grabbed it between ``free_port()`` and the bind (a real race on busy machines)."""
    if port:
        return start(port)
    attempts = 3
    for attempt in range(attempts):
        chosen = free_port()
        try:
            return start(chosen)
        except ServiceStartError as exc:
            lost_race = "address already in use" in exc.log_tail.lower() or _port_in_use(chosen)
            if attempt == attempts - 1 or not lost_race:
                raise
    raise AssertionError("unreachable")


def _http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        return httpx.get(url, timeout=1.0).status_code == 200

    return probe


# --- PostgreSQL -----------------------------------------------------------------------------


@dataclass
class Postgres(Service):
    user: str = "postgres"
    password: str = field(default="", repr=False)
    dbname: str = "app"
    datadir: Path = Path()
    socket_dir: Path = Path()

    @property
    def url(self) -> str:
        """A libpq URL without the password (pass it separately, e.g. via ``conninfo()``)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def conninfo(self, dbname: str | None = None, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect(**...)`` / ``conninfo=make_conninfo(**...)``."""
        info: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": dbname or self.dbname,
            "connect_timeout": 3,
        }
        info.update(extra)
        return info


def _postgres_user_can_write(path: Path, user: str) -> bool:
    """Whether ``user`` can create files in ``path`` (pytest's temp folders are 0700 root)."""
    pw = pwd.getpwnam(user)
    result = subprocess.run(
        ["test", "-w", str(path), "-a", "-x", str(path)],
        user=pw.pw_uid,
        group=pw.pw_gid,
        extra_groups=[],
        cwd="/",
        check=False,
    )
    return result.returncode == 0


def start_postgres(
    workdir: str | os.PathLike[str],
    port: int = 0,
    password: str = "opsnb-lab-password",
    *,
    max_connections: int = 50,
    timeout: float = 60.0,
    extra_settings: dict[str, str] | None = None,
) -> Postgres:
    """initdb a fresh cluster (scram password for ``postgres``), start it on 127.0.0.1, create
    database ``app``. PostgreSQL refuses to run as root, so as root it runs as user ``postgres``."""
    import psycopg  # imported here: the other services must not need it

    initdb = _binary("initdb", PG_BIN / "initdb")
    postgres = _binary("postgres", PG_BIN / "postgres")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    run_as: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceStartError(
                "postgres",
                "running as root needs a 'postgres' user to run the server as; "
                "install the Debian package 'postgresql-15' (it creates the user)",
            ) from None
        run_as = "postgres"

    # The cluster lives in workdir/postgres when the postgres user can reach it; otherwise
    # (a 0700 folder owned by root, as pytest makes) in a private folder under /tmp that is
    # removed on stop.
    base = workdir / "postgres"
    base.mkdir(exist_ok=True)
    cleanup: list[Callable[[], None]] = []
    if run_as:
        pw = pwd.getpwnam(run_as)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        if not _postgres_user_can_write(base, run_as):
            base = Path(tempfile.mkdtemp(prefix="opsnb-pg-"))
            os.chown(base, pw.pw_uid, pw.pw_gid)
            (workdir / "postgres" / "LOCATION").write_text(f"{base}\n")
            cleanup.append(functools.partial(shutil.rmtree, base, ignore_errors=True))
    datadir = base / "data"
    socket_dir = base / "sock"
    log_path = workdir / "postgres.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}

    if not (datadir / "PG_VERSION").exists():
        # the password reaches initdb through a file only the server's user can read
        pwfile = base / "pwfile"
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        if run_as:
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        try:
            proc = _spawn(
                "initdb",
                [
                    initdb,
                    "-D",
                    str(datadir),
                    "-U",
                    "postgres",
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                log_path,
                cwd=base,
                user=run_as,
                env=env,
            )
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                rc = -1
            _kill_group(proc, signal.SIGKILL, 0.1)
        finally:
            pwfile.unlink(missing_ok=True)
        if rc != 0:
            for fn in cleanup:
                fn()
            raise ServiceStartError(
                "postgres", f"initdb failed (status {rc})", log_tail=_tail(log_path)
            )
    socket_dir.mkdir(exist_ok=True)
    if run_as:
        os.chown(socket_dir, pw.pw_uid, pw.pw_gid)

    settings = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(socket_dir),
        "max_connections": str(max_connections),
        "fsync": "off",  # speed: a lab cluster is thrown away, durability does not matter
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "32MB",
        "log_min_messages": "warning",
        **(extra_settings or {}),
    }

    def start(chosen: int) -> Postgres:
        argv = [postgres, "-D", str(datadir), "-p", str(chosen)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        proc = _spawn("postgres", argv, log_path, cwd=base, user=run_as, env=env)

        def probe() -> bool:
            with psycopg.connect(
                host="127.0.0.1",
                port=chosen,
                user="postgres",
                password=password,
                dbname="postgres",
                connect_timeout=2,
            ):
                return True

        _wait_ready("postgres", proc, log_path, probe, timeout)
        return Postgres(
            name="postgres",
            host="127.0.0.1",
            port=chosen,
            workdir=workdir,
            log_path=log_path,
            # SIGINT is a fast shutdown; SIGTERM ("smart") would wait for clients to leave
            proc=proc,
            _stop_signal=signal.SIGINT,
            _cleanup=list(cleanup),
            user="postgres",
            password=password,
            dbname="app",
            datadir=datadir,
            socket_dir=socket_dir,
        )

    try:
        server = _start_with_port_retry(port, start)
    except ServiceStartError:
        for fn in cleanup:
            fn()
        raise
    assert isinstance(server, Postgres)
    try:
        with psycopg.connect(**server.conninfo(dbname="postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'app'").fetchone()
            if not exists:
                conn.execute("CREATE DATABASE app")
    except psycopg.Error as exc:
        server.stop()
        raise ServiceStartError("postgres", f"could not create database 'app': {exc}") from exc
    return server


# --- Redis ----------------------------------------------------------------------------------


@dataclass
class Redis(Service):
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``redis://`` URL without the password (pass it as ``password=``)."""
        return f"redis://{self.host}:{self.port}/0"

    def client(self, **kwargs: Any) -> Any:
        import redis

        return redis.Redis(host=self.host, port=self.port, password=self.password, **kwargs)


def start_redis(
    workdir: str | os.PathLike[str],
    port: int = 0,
    password: str | None = None,
    *,
    timeout: float = 15.0,
) -> Redis:
    """Start ``redis-server`` on 127.0.0.1 with persistence off; ``password`` sets requirepass."""
    import redis

    binary = _binary("redis-server")
    workdir = Path(workdir).resolve()
    rdir = workdir / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "redis.log"

    def start(chosen: int) -> Redis:
        # settings go in a 0600 file so the password never shows in `ps`
        conf = rdir / "redis.conf"
        lines = [
            f"port {chosen}",
            "bind 127.0.0.1",
            'save ""',
            "appendonly no",
            f"dir {rdir}",
            "daemonize no",
            "protected-mode yes",
        ]
        if password:
            lines.append(f"requirepass {password}")
        conf.write_text("\n".join(lines) + "\n")
        os.chmod(conf, 0o600)
        proc = _spawn("redis", [binary, str(conf)], log_path, cwd=rdir)

        def probe() -> bool:
            client = redis.Redis(
                host="127.0.0.1",
                port=chosen,
                password=password,
                socket_timeout=1,
                socket_connect_timeout=1,
            )
            try:
                return bool(client.ping())
            finally:
                client.close()

        _wait_ready("redis", proc, log_path, probe, timeout)
        return Redis(
            name="redis",
            host="127.0.0.1",
            port=chosen,
            workdir=workdir,
            log_path=log_path,
            proc=proc,
            password=password,
        )

    server = _start_with_port_retry(port, start)
    assert isinstance(server, Redis)
    return server


# --- Prometheus -----------------------------------------------------------------------------


def _quote(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    import json

    return json.dumps(value)


def prometheus_config(
    scrape_targets: Iterable[str],
    rule_files: Iterable[str | os.PathLike[str]] = (),
    alertmanager_url: str | None = None,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    job: str = "lab",
) -> str:
    """The text of a prometheus.yml: one job scraping ``host:port`` targets (or URLs)."""
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {evaluation_interval}",
        f"  scrape_timeout: {scrape_interval}",
    ]
    rules = [str(Path(r).resolve()) for r in rule_files]
    if rules:
        lines.append("rule_files:")
        lines += [f"  - {_quote(r)}" for r in rules]
    if alertmanager_url:
        am = httpx.URL(alertmanager_url)
        lines += [
            "alerting:",
            "  alertmanagers:",
            f"    - scheme: {am.scheme or 'http'}",
            f"      path_prefix: {_quote(am.path or '/')}",
            "      static_configs:",
            f"        - targets: [{_quote(f'{am.host}:{am.port}')}]",
        ]
    lines.append("scrape_configs:")
    lines += [f"  - job_name: {_quote(job)}", "    static_configs:", "      - targets: ["]
    addresses = []
    for target in scrape_targets:
        # accept "127.0.0.1:8000" or "http://127.0.0.1:8000/metrics"; the path is always /metrics
        if "://" in target:
            u = httpx.URL(target)
            target = f"{u.host}:{u.port}"
        addresses.append(_quote(target))
    lines[-1] += ", ".join(addresses) + "]"
    return "\n".join(lines) + "\n"


_UNSET = object()  # "leave as it is", distinct from None ("no Alertmanager")


@dataclass
class Prometheus(Service):
    config_path: Path = Path()
    scrape_targets: list[str] = field(default_factory=list)
    rule_files: list[str] = field(default_factory=list)
    alertmanager_url: str | None = None
    scrape_interval: str = "1s"
    evaluation_interval: str = "1s"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reload(self, timeout: float = 5.0) -> None:
        """Ask Prometheus to re-read prometheus.yml (and its rule files)."""
        response = httpx.post(f"{self.url}/-/reload", timeout=timeout)
        if response.status_code != 200:
            raise ServiceStartError(
                "prometheus",
                f"reload failed ({response.status_code}): {response.text.strip()}",
                log_tail=self.log_tail(),
            )

    def reconfigure(
        self,
        *,
        scrape_targets: Iterable[str] | None = None,
        rule_files: Iterable[str | os.PathLike[str]] | None = None,
        alertmanager_url: str | None | object = _UNSET,
    ) -> None:
        """Rewrite prometheus.yml with changed settings and reload it."""
        if scrape_targets is not None:
            self.scrape_targets = list(scrape_targets)
        if rule_files is not None:
            self.rule_files = [str(r) for r in rule_files]
        if alertmanager_url is not _UNSET:
            self.alertmanager_url = alertmanager_url  # type: ignore[assignment]
        self.config_path.write_text(
            prometheus_config(
                self.scrape_targets,
                self.rule_files,
                self.alertmanager_url,
                self.scrape_interval,
                self.evaluation_interval,
            )
        )
        self.reload()

    def query(self, expr: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Instant query; the ``data.result`` list (handy in tests)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=timeout)
        response.raise_for_status()
        return list(response.json()["data"]["result"])


def start_prometheus(
    workdir: str | os.PathLike[str],
    port: int = 0,
    scrape_targets: Iterable[str] = (),
    rule_files: Iterable[str | os.PathLike[str]] = (),
    alertmanager_url: str | None = None,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    *,
    timeout: float = 30.0,
) -> Prometheus:
    """Start Prometheus scraping ``scrape_targets`` (``host:port``), lifecycle API enabled."""
    binary = _binary("prometheus")
    workdir = Path(workdir).resolve()
    pdir = workdir / "prometheus"
    pdir.mkdir(parents=True, exist_ok=True)
    config_path = pdir / "prometheus.yml"
    log_path = workdir / "prometheus.log"
    targets = list(scrape_targets)
    rules = [str(Path(r).resolve()) for r in rule_files]
    config_path.write_text(
        prometheus_config(targets, rules, alertmanager_url, scrape_interval, evaluation_interval)
    )

    def start(chosen: int) -> Prometheus:
        argv = [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={pdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{chosen}",
            "--web.enable-lifecycle",
            f"--web.external-url=http://127.0.0.1:{chosen}/",
            "--log.level=warn",
            "--storage.tsdb.retention.time=1d",
        ]
        proc = _spawn("prometheus", argv, log_path, cwd=pdir)
        _wait_ready(
            "prometheus", proc, log_path, _http_ok(f"http://127.0.0.1:{chosen}/-/ready"), timeout
        )
        return Prometheus(
            name="prometheus",
            host="127.0.0.1",
            port=chosen,
            workdir=workdir,
            log_path=log_path,
            proc=proc,
            config_path=config_path,
            scrape_targets=targets,
            rule_files=rules,
            alertmanager_url=alertmanager_url,
            scrape_interval=scrape_interval,
            evaluation_interval=evaluation_interval,
        )

    server = _start_with_port_retry(port, start)
    assert isinstance(server, Prometheus)
    return server


# --- Alertmanager ---------------------------------------------------------------------------

DEFAULT_ALERTMANAGER_CONFIG = """\
route:
  receiver: "null"
  group_by: ["alertname", "service"]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: "null"
"""


@dataclass
class Alertmanager(Service):
    config_path: Path = Path()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reload(self, timeout: float = 5.0) -> None:
        response = httpx.post(f"{self.url}/-/reload", timeout=timeout)
        if response.status_code != 200:
            raise ServiceStartError(
                "alertmanager",
                f"reload failed ({response.status_code}): {response.text.strip()}",
                log_tail=self.log_tail(),
            )


def start_alertmanager(
    workdir: str | os.PathLike[str],
    port: int = 0,
    config_yaml: str | None = None,
    *,
    timeout: float = 30.0,
) -> Alertmanager:
    """Start Alertmanager alone (no cluster listener) with ``config_yaml`` or a null receiver."""
    binary = _binary("prometheus-alertmanager")
    workdir = Path(workdir).resolve()
    adir = workdir / "alertmanager"
    adir.mkdir(parents=True, exist_ok=True)
    config_path = adir / "alertmanager.yml"
    config_path.write_text(config_yaml if config_yaml is not None else DEFAULT_ALERTMANAGER_CONFIG)
    log_path = workdir / "alertmanager.log"

    def start(chosen: int) -> Alertmanager:
        argv = [
            binary,
            f"--config.file={config_path}",
            f"--storage.path={adir / 'data'}",
            f"--web.listen-address=127.0.0.1:{chosen}",
            f"--web.external-url=http://127.0.0.1:{chosen}/",
            "--cluster.listen-address=",  # without it, it binds 0.0.0.0:9094 for gossip
            "--log.level=warn",
        ]
        proc = _spawn("alertmanager", argv, log_path, cwd=adir)
        _wait_ready(
            "alertmanager", proc, log_path, _http_ok(f"http://127.0.0.1:{chosen}/-/ready"), timeout
        )
        return Alertmanager(
            name="alertmanager",
            host="127.0.0.1",
            port=chosen,
            workdir=workdir,
            log_path=log_path,
            proc=proc,
            config_path=config_path,
        )

    server = _start_with_port_retry(port, start)
    assert isinstance(server, Alertmanager)
    return server
