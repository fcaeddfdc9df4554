"""API keys, tenants, scopes, quotas and cross-site requests, in process.

Most tests run with AUTH_REQUIRED on, as docker-compose.yml deploys it; the open mode of the
embedded `make run` is tested at the end.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from store.admin import main as admin_main
from store.tables import utcnow
from tests.api.conftest import Api, make_api
from tests.tiny_configs import TINY_CONFIGS
from worker.runner import run_job

ADMIN = "admin-key-for-the-tests-0123456789"
VI = {**TINY_CONFIGS["value_iteration"]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def secured(tmp_path: Path) -> Api:
    return make_api(tmp_path, auth_required=True, admin_api_key=ADMIN)


def new_key(api: Api, tenant: str, scopes: list[str], **extra: Any) -> dict[str, Any]:
    r = api.client.post(
        "/v1/keys", json={"tenant": tenant, "scopes": scopes, **extra}, headers=bearer(ADMIN)
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def all_scopes(api: Api, tenant: str) -> dict[str, str]:
    return bearer(new_key(api, tenant, ["read", "train", "query"])["key"])


def submit(api: Api, headers: dict[str, str], **spec: Any) -> dict[str, Any]:
    r = api.client.post(
        "/v1/jobs", json={"algorithm": "value_iteration", "config": VI, **spec}, headers=headers
    )
    assert r.status_code == 202, r.text
    return dict(r.json())


def npz_bytes() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32))
    return buffer.getvalue()


# -- keys -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "api_key_required"),
        (bearer("crk_00000000_" + "x" * 43), "invalid_api_key"),
        (bearer("not-a-key"), "invalid_api_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "invalid_api_key"),
    ],
)
def test_without_a_valid_key_every_resource_is_401(
    secured: Api, headers: dict[str, str], code: str
) -> None:
    for method, url in [
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/models"),
        ("GET", "/v1/datasets"),
        ("GET", "/v1/registry"),
        ("GET", "/v1/algorithms"),
        ("POST", "/v1/models/x/q-values"),
        ("GET", "/v1/keys"),
    ]:
        r = secured.client.request(method, url, headers=headers, json={})
        assert r.status_code == 401, (method, url, r.text)
        assert r.json()["code"] == code
        assert r.headers["WWW-Authenticate"] == "Bearer"


def test_health_and_docs_stay_open(secured: Api) -> None:
    for url in ("/healthz", "/readyz", "/docs", "/openapi.json", "/redoc"):
        assert secured.client.get(url).status_code == 200, url


def test_a_key_is_shown_once_and_stored_hashed(secured: Api) -> None:
    created = new_key(secured, "team-a", ["read"], name="ci", expires_in_days=30)
    key = created["key"]
    assert key.startswith(created["prefix"] + "_") and created["state"] == "active"
    assert created["expires_at"] is not None and created["created_by"] == "admin"
    listed = secured.client.get("/v1/keys", headers=bearer(ADMIN)).json()
    assert listed["count"] == 1 and "key" not in listed["data"][0]
    one = secured.client.get(f"/v1/keys/{created['id']}", headers=bearer(ADMIN)).json()
    assert "key" not in one
    engine = sa.create_engine(secured.settings.resolved_database_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT * FROM api_keys")).mappings().one()
    engine.dispose()
    assert key not in {str(v) for v in stored.values()}
    assert key[len(created["prefix"]) :] not in str(dict(stored))
    me = secured.client.get("/v1/keys/current", headers=bearer(key)).json()
    assert me == {
        "tenant": "team-a",
        "key_id": created["id"],
        "scopes": ["read"],
        "auth_required": True,
    }
    used = secured.client.get(f"/v1/keys/{created['id']}", headers=bearer(ADMIN)).json()
    assert used["last_used_at"] is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tenant": "Team A", "scopes": ["read"]}, "tenant"),
        ({"tenant": "a", "scopes": []}, "scopes"),
        ({"tenant": "a", "scopes": ["root"]}, "scopes.0"),
        ({"tenant": "a", "scopes": ["read"], "expires_in_days": 0}, "expires_in_days"),
    ],
)
def test_bad_key_requests_are_422(secured: Api, body: dict[str, Any], field: str) -> None:
    err = secured.error("POST", "/v1/keys", 422, json=body, headers=bearer(ADMIN))
    assert err["field"] == field


def test_revoked_and_expired_keys_are_refused(secured: Api) -> None:
    created = new_key(secured, "team-a", ["read"])
    headers = bearer(created["key"])
    assert secured.client.get("/v1/jobs", headers=headers).status_code == 200
    r = secured.client.delete(f"/v1/keys/{created['id']}", headers=bearer(ADMIN))
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert secured.error("GET", "/v1/jobs", 401, headers=headers)["code"] == "api_key_revoked"

    short = new_key(secured, "team-a", ["read"], expires_in_days=1)
    engine = sa.create_engine(secured.settings.resolved_database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE api_keys SET expires_at = :t WHERE id = :id"),
            {"t": (utcnow() - timedelta(seconds=1)).replace(tzinfo=None), "id": short["id"]},
        )
    engine.dispose()
    secured.app.state.key_cache.clear()  # what KEY_CACHE_SECONDS does on its own
    err = secured.error("GET", "/v1/jobs", 401, headers=bearer(short["key"]))
    assert err["code"] == "api_key_expired"
    assert secured.error("DELETE", "/v1/keys/nosuchkey", 404, headers=bearer(ADMIN))


def test_scopes_are_enforced_with_403(secured: Api) -> None:
    reader = bearer(new_key(secured, "team-a", ["read"])["key"])
    trainer = bearer(new_key(secured, "team-a", ["train"])["key"])
    querier = bearer(new_key(secured, "team-a", ["query"])["key"])
    job = submit(secured, trainer)
    forbidden = [
        (reader, "POST", "/v1/jobs", {"algorithm": "value_iteration"}),
        (reader, "POST", f"/v1/jobs/{job['id']}/cancel", None),
        (trainer, "GET", "/v1/jobs", None),
        (querier, "GET", f"/v1/jobs/{job['id']}", None),
        (reader, "POST", f"/v1/models/{job['id']}/q-values", {"states": [0]}),
        (reader, "POST", "/v1/keys", {"tenant": "x", "scopes": ["read"]}),
        (trainer, "GET", "/v1/keys", None),
        (querier, "PUT", "/v1/tenants/team-a/quotas", {"active_jobs": 100}),
    ]
    for headers, method, url, body in forbidden:
        err = secured.error(method, url, 403, json=body, headers=headers)
        assert err["code"] == "missing_scope", (method, url)
    assert secured.client.get(f"/v1/jobs/{job['id']}", headers=reader).status_code == 200


def test_jobs_record_which_key_submitted_and_cancelled(secured: Api) -> None:
    a = new_key(secured, "team-a", ["read", "train"])
    b = new_key(secured, "team-a", ["train"])
    job = submit(secured, bearer(a["key"]))
    assert job["submitted_by"] == a["id"] and job["cancelled_by"] is None
    r = secured.client.post(f"/v1/jobs/{job['id']}/cancel", headers=bearer(b["key"]))
    assert r.status_code == 202 and r.json()["cancelled_by"] == b["id"]


# -- tenants ----------------------------------------------------------------------------------
def test_another_tenants_resources_are_404_and_lists_are_own(secured: Api) -> None:
    a, b = all_scopes(secured, "team-a"), all_scopes(secured, "team-b")
    job = submit(secured, a, register_as={"name": "planner", "aliases": ["prod"]})
    run_job(job["id"], secured.settings, worker="test-worker")
    model_id = secured.client.get(f"/v1/jobs/{job['id']}", headers=a).json()["model_id"]
    upload = secured.client.post(
        "/v1/datasets",
        files={"file": ("d.npz", npz_bytes())},
        data={"kind": "samples"},
        headers=a,
    )
    assert upload.status_code == 201, upload.text
    dataset_id = upload.json()["id"]

    own = [
        f"/v1/jobs/{job['id']}",
        f"/v1/jobs/{job['id']}/metrics",
        f"/v1/models/{model_id}",
        f"/v1/models/{job['id']}",
        "/v1/models/planner@prod",
        "/v1/models/planner@1",
        f"/v1/models/{model_id}/file",
        "/v1/registry/planner",
        f"/v1/datasets/{dataset_id}",
    ]
    for url in own:
        assert secured.client.get(url, headers=a).status_code == 200, url
        theirs = secured.client.get(url, headers=b)
        assert theirs.status_code == 404, (url, theirs.text)
        missing = secured.client.get(url.replace(job["id"], "0" * 32), headers=b)
        assert theirs.json()["code"] in {missing.json()["code"], "name_not_found"}
    for url in ("/v1/jobs", "/v1/models", "/v1/registry"):
        assert secured.client.get(url, headers=b).json()["count"] == 0, url
        assert secured.client.get(url, headers=a).json()["count"] == 1, url
    uploaded = secured.client.get("/v1/datasets?builtin=false", headers=b).json()
    assert uploaded["count"] == 0
    assert (
        secured.client.post(
            f"/v1/models/{model_id}/q-values", json={"states": [0]}, headers=b
        ).status_code
        == 404
    )
    assert (
        secured.client.post(
            f"/v1/models/{model_id}/q-values", json={"states": [0]}, headers=a
        ).status_code
        == 200
    )
    for method, url in [
        ("POST", f"/v1/jobs/{job['id']}/cancel"),
        ("DELETE", f"/v1/datasets/{dataset_id}"),
        ("DELETE", "/v1/registry/planner/aliases/prod"),
    ]:
        assert secured.client.request(method, url, headers=b).status_code == 404, url
    # A job of b's cannot use a's dataset, nor b register a version of a's model.
    r = secured.client.post(
        "/v1/jobs",
        json={"algorithm": "gan", "config": {"dataset": {"kind": "uploaded", "id": dataset_id}}},
        headers=b,
    )
    assert r.status_code == 422 and r.json()["code"] == "dataset_not_found"
    r = secured.client.post("/v1/registry/planner/versions", json={"model_id": model_id}, headers=b)
    assert r.status_code == 404
    # Names are per tenant: b may use the same one.
    b_job = submit(secured, b, register_as={"name": "planner"})
    run_job(b_job["id"], secured.settings, worker="test-worker")
    mine = secured.client.get("/v1/models/planner@1", headers=b).json()
    assert mine["job_id"] == b_job["id"]


def test_deduplication_and_idempotency_keys_are_per_tenant(secured: Api) -> None:
    a, b = all_scopes(secured, "team-a"), all_scopes(secured, "team-b")
    data = npz_bytes()
    ids = set()
    for headers in (a, b, a):
        r = secured.client.post(
            "/v1/datasets",
            files={"file": ("d.npz", data)},
            data={"kind": "samples"},
            headers=headers,
        )
        assert r.status_code in (200, 201), r.text
        ids.add(r.json()["id"])
    assert len(ids) == 2
    key = {"Idempotency-Key": "same-key"}
    first = submit(secured, {**a, **key})
    second = submit(secured, {**b, **key})
    assert first["id"] != second["id"]
    assert submit(secured, {**a, **key})["id"] == first["id"]


# -- quotas -----------------------------------------------------------------------------------
def set_quotas(api: Api, tenant: str, **values: int | None) -> dict[str, Any]:
    r = api.client.put(f"/v1/tenants/{tenant}/quotas", json=values, headers=bearer(ADMIN))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_active_jobs_quota(secured: Api) -> None:
    a = all_scopes(secured, "team-a")
    described = set_quotas(secured, "team-a", active_jobs=1)
    assert described["quotas"]["active_jobs"] == 1 and described["overrides"]["active_jobs"] == 1
    first = submit(secured, a)
    r = secured.client.post(
        "/v1/jobs", json={"algorithm": "value_iteration", "config": VI}, headers=a
    )
    assert r.status_code == 429 and r.json()["code"] == "active_jobs_quota_exceeded"
    assert int(r.headers["Retry-After"]) > 0
    # Other tenants are not affected; a finished job frees the slot.
    submit(secured, all_scopes(secured, "team-b"))
    secured.client.post(f"/v1/jobs/{first['id']}/cancel", headers=a)
    submit(secured, a)
    own = secured.client.get("/v1/tenants/team-a", headers=a).json()
    assert own["usage"]["active_jobs"] == 1
    assert secured.client.get("/v1/tenants/team-b", headers=a).status_code == 404


def test_storage_quota(secured: Api) -> None:
    a = all_scopes(secured, "team-a")
    set_quotas(secured, "team-a", storage_bytes=100)
    r = secured.client.post(
        "/v1/datasets", files={"file": ("d.npz", npz_bytes())}, data={"kind": "samples"}, headers=a
    )
    assert r.status_code == 429 and r.json()["code"] == "storage_quota_exceeded", r.text
    set_quotas(secured, "team-a", storage_bytes=None)
    r = secured.client.post(
        "/v1/datasets", files={"file": ("d.npz", npz_bytes())}, data={"kind": "samples"}, headers=a
    )
    assert r.status_code == 201
    set_quotas(secured, "team-a", storage_bytes=10)
    r = secured.client.post(
        "/v1/jobs", json={"algorithm": "value_iteration", "config": VI}, headers=a
    )
    assert r.status_code == 429 and r.json()["code"] == "storage_quota_exceeded"


def test_query_rate_limit(secured: Api) -> None:
    a = all_scopes(secured, "team-a")
    job = submit(secured, a)
    run_job(job["id"], secured.settings, worker="test-worker")
    set_quotas(secured, "team-a", queries_per_minute=10)  # a burst of 1, then 1 per 6 s
    url = f"/v1/models/{job['id']}/q-values"
    assert secured.client.post(url, json={"states": [0]}, headers=a).status_code == 200
    r = secured.client.post(url, json={"states": [0]}, headers=a)
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 6
    # Reading is not rate limited.
    assert secured.client.get(f"/v1/jobs/{job['id']}", headers=a).status_code == 200


# -- cross-site requests ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Content-Type": "text/plain"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_cross_site_request_cannot_change_state(tmp_path: Path, headers: dict[str, str]) -> None:
    api = make_api(tmp_path)  # open: the case where no key protects anything
    job = api.submit("value_iteration", VI)
    r = api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers, content=b"x")
    assert r.status_code == 403 and r.json()["code"] == "cross_site_request"
    assert api.client.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=same).status_code == 202
    assert api.client.get("/v1/jobs", headers=headers).status_code == 200  # reads are fine


# -- open mode and the admin command --------------------------------------------------------------
def test_open_mode_serves_the_default_tenant_and_still_checks_keys(tmp_path: Path) -> None:
    api = make_api(tmp_path, admin_api_key=ADMIN)
    job = api.submit("value_iteration", VI)
    assert job["submitted_by"] is None
    me = api.client.get("/v1/keys/current").json()
    assert me["tenant"] == "default" and "admin" not in me["scopes"] and not me["auth_required"]
    assert api.error("GET", "/v1/keys", 403)["code"] == "missing_scope"
    assert api.error("GET", "/v1/jobs", 401, headers=bearer("wrong"))["code"] == "invalid_api_key"
    other = all_scopes(api, "team-b")
    assert api.client.get(f"/v1/jobs/{job['id']}", headers=other).status_code == 404
    assert api.client.get(f"/v1/jobs/{job['id']}").status_code == 200


def test_admin_command_creates_lists_and_revokes_keys(
    secured: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", secured.settings.resolved_database_url)
    monkeypatch.setenv("VAR_DIR", str(secured.settings.var_dir))
    from store.settings import get_settings

    get_settings.cache_clear()
    try:
        assert admin_main(["keys", "create", "--tenant", "ops", "--scopes", "read,train"]) == 0
        created = json.loads(capsys.readouterr().out)
        headers = bearer(created["key"])
        assert secured.client.get("/v1/keys/current", headers=headers).json()["tenant"] == "ops"
        assert admin_main(["keys", "list", "--tenant", "ops"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert listed["count"] == 1 and "key" not in listed["data"][0]
        assert admin_main(["quotas", "set", "ops", "--active-jobs", "3"]) == 0
        assert json.loads(capsys.readouterr().out)["quotas"]["active_jobs"] == 3
        assert admin_main(["keys", "revoke", created["id"]]) == 0
        capsys.readouterr()
        secured.app.state.key_cache.clear()
        assert secured.client.get("/v1/jobs", headers=headers).status_code == 401
        assert admin_main(["keys", "create", "--tenant", "Bad Name", "--scopes", "read"]) == 2
    finally:
        get_settings.cache_clear()
