"""The API held to its OpenAPI document by a schema-driven fuzzer (schemathesis).

Every operation is called with generated inputs, valid and invalid, authenticated with a key
of every scope, and with real ids in its path about half the time (a trained model by id, job
id and name@alias, a job, a dataset, a query result, a key), so the fuzzer reaches past the
404s. Whatever it sends: no 5xx, every status declared for the operation, every body and
header as declared. A bounded number of cases per operation keeps it to seconds.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from tests.api.conftest import Api, make_api
from tests.tiny_configs import TINY_CONFIGS
from worker.runner import run_job

ADMIN = "fuzz-admin-key-0123456789abcdef"
EXAMPLES_PER_OPERATION = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Invalid bodies must be refused. Not applied to query strings: every query value is text,
# and the fuzzer counts `?name=3.0` as a number where a string goes.
BODY_CHECKS = [*CHECKS, negative_data_rejection]


class Fuzzed:
    api: Api
    headers: dict[str, str]
    real: dict[str, list[str]]


STATE = Fuzzed()


def _train(api: Api, headers: dict[str, str], algorithm: str, **spec: Any) -> str:
    r = api.client.post(
        "/v1/jobs",
        json={"algorithm": algorithm, "config": TINY_CONFIGS[algorithm], **spec},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    job_id = str(r.json()["id"])
    run_job(job_id, api.settings, worker="fuzz-worker")
    return job_id


@pytest.fixture(scope="module")
def fuzz_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root: Path = tmp_path_factory.mktemp("fuzz")
    api = make_api(root, auth_required=True, admin_api_key=ADMIN)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    created = api.client.post(
        "/v1/keys",
        json={"tenant": "fuzz", "scopes": ["read", "train", "query", "admin"]},
        headers=admin,
    ).json()
    decoy = api.client.post(
        "/v1/keys", json={"tenant": "fuzz", "scopes": ["read"]}, headers=admin
    ).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    jobs = [
        _train(api, headers, "value_iteration", register_as={"name": "vi", "aliases": ["prod"]}),
        _train(api, headers, "gan"),
        _train(api, headers, "dqn"),
    ]
    models = [api.client.get(f"/v1/jobs/{j}", headers=headers).json()["model_id"] for j in jobs]
    buffer = io.BytesIO()
    np.savez(buffer, x=np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32))
    dataset = api.client.post(
        "/v1/datasets",
        files={"file": ("d.npz", buffer.getvalue())},
        data={"kind": "samples"},
        headers=headers,
    ).json()["id"]
    heavy = api.client.post(
        f"/v1/models/{jobs[2]}/evaluate", json={"episodes": 50}, headers=headers
    )
    STATE.api = api
    STATE.headers = headers
    STATE.real = {
        "model": [*models, *jobs, "vi@prod", "vi@1"],
        "job_id": jobs,
        "dataset_id": [dataset, "builtin-ring8"],
        "name": ["vi"],
        "alias": ["prod", "staging"],
        "result_id": [heavy.json().get("id", jobs[0])],
        "key_id": [decoy["id"]],
        "tenant": ["fuzz"],
    }
    return schemathesis.openapi.from_asgi("/openapi.json", api.app)


def operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the document, known when tests are collected."""
    document = create_app().openapi()
    return [(method.upper(), path) for path, ops in document["paths"].items() for method in ops]


def with_real_ids(case: Any) -> None:
    """Half the time (decided by the generated value, so a failure replays), a real id."""
    for name, value in list((case.path_parameters or {}).items()):
        choices = STATE.real.get(name)
        digest = zlib.crc32(repr(value).encode())
        if choices and digest % 2 == 0:
            case.path_parameters[name] = choices[(digest // 2) % len(choices)]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), operations())
def test_every_operation_keeps_its_word(
    fuzz_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = fuzz_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def fuzz(case: Any) -> None:
        if mode is GenerationMode.POSITIVE:  # a negative case's fault may be in its path
            with_real_ids(case)
        checks = BODY_CHECKS if operation.body else CHECKS
        case.call_and_validate(headers=STATE.headers, checks=checks)

    try:
        fuzz()
    except Unsatisfiable:  # nothing in it can be made invalid (no parameters, no body)
        assert mode is GenerationMode.NEGATIVE
