"""One module per backend, each usable in one line of a notebook cell.

Live backends talk to real services; snapshot backends answer the same calls, with the same
DataFrame columns, from a recorded ``opsnb-snapshot/1`` folder:

==============  ==========================================  ===============================
backend         live                                        snapshot
==============  ==========================================  ===============================
Prometheus      ``prometheus.PrometheusBackend``            ``snapshot.SnapshotPrometheus``
Kubernetes      ``kubernetes.KubernetesBackend``            ``snapshot.SnapshotKubernetes``
PostgreSQL      ``postgres.PostgresBackend``                ``snapshot_stores.SnapshotPostgres``
Redis           ``redis.RedisBackend``                      ``snapshot.SnapshotRedis``
logs            ``logs.parse`` / ``logs.error_breakdown``   (the same functions)
==============  ==========================================  ===============================

Every backend raises ``opsnb.errors.BackendUnavailable`` when its service is refused, times
out or answers with an error status; a request the caller got wrong raises a ``ValueError``
or ``LookupError`` subclass instead. Client libraries (kubernetes, httpx, psycopg, redis)
are imported only when a live backend is used, so importing this package stays cheap.
"""
