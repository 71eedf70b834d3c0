"""Run summaries posted to Slack-compatible incoming webhooks, from a durable outbox.

A finished run's notifications are committed with its outcome (``notifications`` table);
this thread posts them (``{"text": ..., "blocks": [...]}``, what Slack, Mattermost and
Rocket.Chat incoming webhooks accept). A failure (refused, timeout, a non-2xx answer) is
retried after ``notify_backoff`` seconds, doubling, up to ``notify_attempts`` tries; the run
itself never waits for any of it, and a restart resumes the outbox.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx

from .settings import ServeSettings
from .store import Store

log = logging.getLogger("opsnb.serve")


def summary_payload(run: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The Slack-compatible message for a finished run."""
    link = f"{base_url}/runs/{run['id']}"
    findings = run.get("findings") or []
    lines = [f"*{f.get('cause')}* → {f.get('recommendation')}" for f in findings[:5]]
    what = f"{run['runbook']} on {run['target']}" + (
        f" ({run['service']})" if run.get("service") else ""
    )
    head = f"opsnb {run['kind']}: {what} for {run.get('alertname') or run['fingerprint']}"
    status = run["status"]
    text = f"{head}: {status}. " + ("; ".join(lines) or "no findings") + f" <{link}|notebook>"
    if run.get("error"):
        text += f"\nerror: {str(run['error'])[:300]}"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{head}*: `{status}`"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines) or "no findings"}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"<{link}|executed notebook> · {run.get('reason') or ''}",
                }
            ],
        },
    ]
    return {"text": text, "blocks": blocks}


class Notifier:
    def __init__(self, store: Store, settings: ServeSettings) -> None:
        self.store = store
        self.settings = settings
        self._hooks = {h.name: h for h in settings.notify}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="opsnb-notify", daemon=True)
        self.sent = 0
        self.failures = 0

    def start(self) -> Notifier:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        with httpx.Client(timeout=self.settings.notify_timeout) as client:
            while not self._stop.wait(0.2):
                try:
                    for note in self.store.due_notifications():
                        if self._stop.is_set():
                            return
                        self.deliver(client, note)
                except Exception:  # the notifier must outlive any one bad notification
                    log.exception("notification loop")

    def deliver(self, client: httpx.Client, note: dict[str, Any]) -> bool:
        hook = self._hooks.get(note["webhook"])
        error = ""
        if hook is None:
            error = f"webhook {note['webhook']!r} is no longer configured"
        else:
            url = ""
            try:
                url = hook.resolve()
                answer = client.post(
                    url, content=note["payload"], headers={"Content-Type": "application/json"}
                )
                if 200 <= answer.status_code < 300:
                    self.store.notified(note["id"], ok=True)
                    self.sent += 1
                    return True
                error = f"HTTP {answer.status_code}: {answer.text[:200]}"
            except Exception as exc:  # refused, timed out, a secret that cannot be read
                error = f"{type(exc).__name__}: {exc}"
            if url and hook.ref is not None:  # a Slack webhook URL is itself a secret
                error = error.replace(url, "[redacted]")
        self.failures += 1
        attempts = note["attempts"] + 1
        retry_at = None
        if hook is not None and attempts < self.settings.notify_attempts:
            retry_at = time.time() + self.settings.notify_backoff * 2 ** (attempts - 1)
        log.warning(
            "notification %s to %s failed (try %s): %s",
            note["id"],
            note["webhook"],
            attempts,
            error,
        )
        self.store.notified(note["id"], ok=False, error=error, retry_at=retry_at)
        return False
