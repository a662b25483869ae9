"""Property-based run over the public OpenAPI schema against a real server: no 5xx, ever.

The server is ``partyquiz-web serve`` in a subprocess on a loopback port, on a migrated
PostgreSQL database, so what is fuzzed is what ships.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.integration.web.conftest import PASSWORD, SECRET, sample_quiz
from tests.servers import Postgres, free_port, wait_for_port

EXAMPLES_PER_OPERATION = 30


@pytest.fixture(scope="module")
def server_url(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTYQUIZ_WEB_")}
    env.update(
        {
            "PARTYQUIZ_WEB_DATABASE_URL": postgres.url(postgres.create_database()),
            "PARTYQUIZ_WEB_JWT_SECRET": SECRET,
            # Limits high enough that fuzzing reaches the handlers, not only the 429s.
            "PARTYQUIZ_WEB_LOGIN_RATE_LIMIT": "1000000",
            "PARTYQUIZ_WEB_CODE_LOOKUP_RATE_LIMIT": "1000000",
            "PARTYQUIZ_WEB_LOG_LEVEL": "warning",
        }
    )
    cwd = tmp_path_factory.mktemp("serve")
    command = [sys.executable, "-m", "partyquiz_web.cli"]
    subprocess.run([*command, "migrate"], env=env, cwd=cwd, check=True, capture_output=True)
    log = Path(cwd) / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, 60, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)
        text = log.read_text()
        assert "unhandled error" not in text, text[-6000:]


@pytest.fixture(scope="module")
def auth_headers(server_url: str) -> dict[str, str]:
    with httpx.Client(base_url=server_url) as client:
        account = {"email": "fuzz@example.org", "password": PASSWORD}
        client.post("/api/auth/register", json=account).raise_for_status()
        token = client.post("/api/auth/login", json=account).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        quiz = client.post("/api/quizzes", json=sample_quiz(), headers=headers).json()
        client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=headers)
    return headers


def test_no_operation_answers_with_a_server_error(
    server_url: str, auth_headers: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(), authenticated=st.booleans())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case, authenticated: bool) -> None:
            headers = dict(case.headers or {})
            if authenticated:
                headers.update(auth_headers)
            response = case.call(base_url=server_url, headers=headers, timeout=30)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:200]}"
                )

        call()
    assert failures == []
