"""Health, readiness and metrics as an orchestrator and Prometheus see them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from tests.integration.web.conftest import MakeWeb, Web, sample_quiz
from tests.servers import free_port


def _labels(text: str, name: str) -> list[dict[str, str]]:
    return [
        dict(sample.labels)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def test_healthz_needs_no_dependency(make_web: MakeWeb) -> None:
    web = await make_web(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    response = await web.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "failing": []})


async def test_readyz_is_ok_when_database_and_redis_answer(
    make_web: MakeWeb, database_url: str, fresh_redis_url: str
) -> None:
    web = await make_web(database_url, redis_url=fresh_redis_url)
    response = await web.client.get("/readyz")
    assert (response.status_code, response.json()["status"]) == (200, "ok")
    metrics = (await web.client.get("/metrics")).text
    assert 'partyquiz_web_dependency_up{dependency="database"} 1.0' in metrics
    assert 'partyquiz_web_dependency_up{dependency="redis"} 1.0' in metrics


async def test_an_unreachable_redis_is_named_but_keeps_the_pages_serving(
    make_web: MakeWeb, database_url: str
) -> None:
    web = await make_web(database_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    response = await web.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "failing": ["redis"]}
    metrics = (await web.client.get("/metrics")).text
    assert 'partyquiz_web_dependency_up{dependency="redis"} 0.0' in metrics


async def test_readyz_names_an_unreachable_database(make_web: MakeWeb) -> None:
    web = await make_web(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    response = await web.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]


async def test_requests_are_counted_by_route_template_not_raw_path(web: Web) -> None:
    auth = await web.register_and_login()
    quiz = (await web.client.post("/api/quizzes", json=sample_quiz(), headers=auth)).json()
    await web.client.get(f"/api/quizzes/{quiz['id']}", headers=auth)
    await web.client.get("/api/quizzes/does-not-exist", headers=auth)
    await web.client.get("/no/such/page/123")
    text = (await web.client.get("/metrics")).text
    handlers = {labels["handler"] for labels in _labels(text, "http_requests_total")}
    assert "/api/quizzes/{quiz_id}" in handlers
    assert "<unmatched>" in handlers
    assert not any(quiz["id"] in h or "does-not-exist" in h or "123" in h for h in handlers)
    counted = {
        (s["handler"], s["method"], s["status"]) for s in _labels(text, "http_requests_total")
    }
    assert ("/api/quizzes/{quiz_id}", "GET", "404") in counted
    durations = _labels(text, "http_request_duration_seconds_count")
    assert {"handler": "/api/quizzes/{quiz_id}", "method": "GET"} in durations


async def test_route_series_exist_before_the_first_request(web: Web) -> None:
    text = (await web.client.get("/metrics")).text
    counted = {
        (s["handler"], s["method"], s["status"]) for s in _labels(text, "http_requests_total")
    }
    assert ("/api/games", "POST", "201") in counted
    assert ("/api/games/code/{join_code}", "GET", "200") in counted


async def test_index_page_and_openapi_docs_are_served(web: Web) -> None:
    index = await web.client.get("/")
    assert index.status_code == 200
    assert "PartyQuiz" in index.text
    docs = await web.client.get("/docs")
    assert docs.status_code == 200
    schema = (await web.client.get("/openapi.json")).json()
    assert not any(path.startswith("/internal") for path in schema["paths"])
    assert "/api/games/code/{join_code}" in schema["paths"]
