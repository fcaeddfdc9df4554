"""Webhooks: a job that ends calls its URL, signed, and a failed call is retried with
back-off; a URL aimed at the service's own network is refused. The receiver is a real HTTP
server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from store import webhooks
from store.db import session_factory, session_scope
from store.tables import Job, utcnow
from tests.api.conftest import Api, make_api
from tests.tiny_configs import TINY_CONFIGS
from worker.sweeper import sweep_once
from worker.webhooks import Refused, public_address

SECRET = "s" * 24


class Receiver(ThreadingHTTPServer):
    """Records each call; answers `status` (a list is used up one call at a time)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.calls.append({"headers": dict(self.headers), "body": body})
        status = self.server.statuses.pop(0) if self.server.statuses else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def open_api(tmp_path: Path) -> Api:
    """A service whose webhooks may call loopback (where the test's receiver listens)."""
    return make_api(tmp_path, webhook_allow_private_hosts=True, webhook_max_attempts=2)


def test_a_job_that_ends_calls_its_webhook_signed(open_api: Api, receiver: Receiver) -> None:
    job = open_api.train("gan", webhook={"url": receiver.url, "secret": SECRET})
    assert len(receiver.calls) == 1
    call = receiver.calls[0]
    body = json.loads(call["body"])
    assert body["event"] == "job.finished"
    assert body["job"]["id"] == job["id"] and body["job"]["status"] == "succeeded"
    assert body["job"]["model_id"] == job["model_id"]
    signature = call["headers"]["Crucible-Signature"]
    assert webhooks.verify(SECRET, call["body"], signature, now=time.time())
    assert not webhooks.verify("another secret!!", call["body"], signature, now=time.time())
    assert not webhooks.verify(SECRET, call["body"] + b" ", signature, now=time.time())
    shown = open_api.client.get(f"/v1/jobs/{job['id']}").json()["webhook"]
    assert shown == {"url": receiver.url, "status": "delivered", "attempts": 1, "last_error": None}
    assert SECRET not in json.dumps(open_api.client.get(f"/v1/jobs/{job['id']}").json())


def test_a_failed_call_is_retried_with_back_off_then_given_up(
    open_api: Api, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    job = open_api.submit(
        "value_iteration",
        TINY_CONFIGS["value_iteration"],
        webhook={"url": receiver.url, "secret": SECRET},
    )
    waiting = open_api.client.get(f"/v1/jobs/{job['id']}").json()["webhook"]
    assert waiting["status"] == "waiting" and waiting["attempts"] == 0
    before = utcnow()
    open_api.run(job["id"])
    after = utcnow()
    shown = open_api.client.get(f"/v1/jobs/{job['id']}").json()["webhook"]
    assert shown["status"] == "pending" and shown["attempts"] == 1
    assert shown["last_error"] == "answered HTTP 500"
    factory = session_factory(open_api.settings.resolved_database_url)
    with session_scope(factory) as session:
        next_at = session.get(Job, job["id"]).webhook_next_at  # type: ignore[union-attr]
        assert next_at is not None  # 5 s after the failed try, which came between the two
        assert before + timedelta(seconds=5) <= next_at <= after + timedelta(seconds=5)
        almost = next_at - timedelta(seconds=1)
        assert job["id"] not in webhooks.due(session, now=almost)  # backing off
        assert job["id"] in webhooks.due(session, now=next_at)
        session.execute(update(Job).where(Job.id == job["id"]).values(webhook_next_at=utcnow()))
    sweep_once(open_api.settings)  # the sweeper retries what is due
    shown = open_api.client.get(f"/v1/jobs/{job['id']}").json()["webhook"]
    assert shown["status"] == "failed" and shown["attempts"] == 2
    assert len(receiver.calls) == 2
    assert [c["headers"]["Crucible-Delivery"] for c in receiver.calls] == [
        f"{job['id']}/1",
        f"{job['id']}/2",
    ]


def test_a_job_cancelled_while_queued_calls_its_webhook_from_the_sweeper(
    open_api: Api, receiver: Receiver
) -> None:
    job = open_api.submit(
        "value_iteration",
        TINY_CONFIGS["value_iteration"],
        webhook={"url": receiver.url, "secret": SECRET},
    )
    assert open_api.client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    sweep_once(open_api.settings)
    assert json.loads(receiver.calls[0]["body"])["job"]["status"] == "cancelled"


def test_back_off_doubles_up_to_ten_minutes() -> None:
    assert [webhooks.backoff(n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert webhooks.backoff(20) == 600


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
    ],
)
def test_webhooks_aimed_at_the_service_s_own_network_are_refused(api: Api, url: str) -> None:
    body = api.error(
        "POST",
        "/v1/jobs",
        422,
        json={"algorithm": "value_iteration", "webhook": {"url": url, "secret": SECRET}},
    )
    assert body["code"] == "invalid_webhook" and body["field"] == "webhook.url"
    with pytest.raises(Refused):
        public_address(url, allow_private=False)


def test_a_webhook_needs_a_long_enough_secret_and_an_http_url(api: Api) -> None:
    short = {"url": "https://example.com/hook", "secret": "short"}
    assert (
        api.error("POST", "/v1/jobs", 422, json={"algorithm": "gan", "webhook": short})["field"]
        == "webhook.secret"
    )
    ftp = {"url": "ftp://example.com/hook", "secret": SECRET}
    body = api.error("POST", "/v1/jobs", 422, json={"algorithm": "gan", "webhook": ftp})
    assert body["field"] == "webhook.url"
