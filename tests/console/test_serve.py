"""The console on the admin port of the real ``iamgate serve``, under a supervisor with two
workers (the admin port is then the supervisor's): sign in and read the overview."""

from __future__ import annotations

from pathlib import Path

from tests.console.conftest import Client
from tests.gateway.conftest import start_gateway
from tests.management.conftest import ADMIN, config_text


def test_the_console_under_a_supervisor(tmp_path: Path) -> None:
    extra = """
apis:
  - id: servedapi
    name: served
    stages: {prod: {}}
    routes:
      - {path: /ping, method: GET, integration: {type: MOCK, body: pong}}
"""
    gateway = start_gateway(tmp_path, config_text(extra=extra).replace("apis: []\n", "", 1), workers=2)
    try:
        browser = Client("127.0.0.1", gateway.admin_port)
        assert browser.get("/console/").status == 303
        assert browser.sign_in(ADMIN).status == 303
        page = browser.get("/console/")
        assert page.status == 200
        assert "servedapi" in page.body
        assert "Read-only" in page.body
        assert browser.post("/console/signout", {"csrf": browser.csrf}).status == 303
        assert browser.get("/console/").status == 303
    finally:
        gateway.stop()
