"""``opsnb serve``: Alertmanager webhooks run the right runbook, durably.

settings.py   the ``serve:`` config section        models.py   the webhook payload (v4)
routing.py    alert -> runbook, target, parameters  store.py    SQLite intake and queue
worker.py     runs the queue                        pool.py     warm kernels
notify.py     Slack-compatible notifications        metrics.py  /metrics
pages.py      HTML pages                            app.py      the web app
"""
