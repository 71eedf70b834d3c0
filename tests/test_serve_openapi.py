"""schemathesis generates calls from opsnb serve's own OpenAPI document: no 5xx, no crash,
no file outside the data folder."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from test_serve_support import AUTH, TOKEN, FakeExecutor

from opsnb.serve import settings as serve_settings
from opsnb.serve.app import create_app

ROOT = Path(tempfile.mkdtemp(prefix="opsnb-serve-openapi-"))


def _app():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPSNB_SERVE_TOKEN", TOKEN)
        s = serve_settings.parse(
            {
                "data_dir": str(ROOT / "data"),
                "default_target": "demo",
                "pool_size": 0,
                "queue_size": 100_000,
                "repeat_interval": 0,
            }
        )
        return create_app(s, executor=FakeExecutor(s.runs_dir))


APP = _app()


async def _without_lifespan(scope, receive, send):
    """schemathesis runs the ASGI lifespan around every call; the service is started once
    (by the module fixture) and lifespan events are acknowledged here."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await APP(scope, receive, send)


schema = schemathesis.openapi.from_asgi("/openapi.json", _without_lifespan)


@pytest.fixture(scope="module", autouse=True)
def _service():
    with TestClient(APP):
        yield
    shutil.rmtree(ROOT, ignore_errors=True)


def test_the_document_describes_the_webhook():
    doc = APP.openapi()
    body = doc["paths"]["/webhook/alertmanager"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Webhook"}
    assert {"Webhook", "Alert"} <= set(doc["components"]["schemas"])
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@schema.parametrize()
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx(case):
    response = case.call(headers=AUTH)
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    assert sorted(p.name for p in ROOT.iterdir()) == ["data"]
