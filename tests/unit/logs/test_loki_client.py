"""kaip.logs.loki.Loki over HTTP against the Loki stand-in on loopback: the tenant header, bearer
authentication, Loki's error answers, retries of 429 and 5xx with back-off, labels."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kaip.logs.loki import Loki, LokiError, Settings
from kaip_testbed.loki_standin import LokiState, serve

T0 = 1_767_225_600_000_000_000


URLS: dict[int, str] = {}


@pytest.fixture
def state() -> Iterator[LokiState]:
    s = LokiState(token="tok")
    s.push("t1", {"namespace": "a", "pod": "j-master-0"}, [(T0 + i, f"l{i}") for i in range(12)])
    server = serve(s)
    URLS[id(s)] = f"http://127.0.0.1:{server.server_port}/"
    yield s
    server.shutdown()


def client(
    state: LokiState, sleeps: list[float] | None = None, *, tenant: str | None = "t1", token: str = "tok"
) -> Loki:
    settings = Settings(url=URLS[id(state)], tenant=tenant, token=token)
    return Loki(settings, environ={}, sleep=(sleeps.append if sleeps is not None else lambda s: None))


def test_pages_with_tenant_and_token(state: LokiState) -> None:
    loki = client(state)
    got = [e.line for e in loki.entries('{namespace="a"}', T0, T0 + 100, limit=5)]
    assert got == [f"l{i}" for i in range(12)]
    assert {r["tenant"] for r in state.requests} == {"t1"}
    assert loki.labels() == ["namespace", "pod"]


def test_no_org_id_says_to_set_the_tenant(state: LokiState) -> None:
    with pytest.raises(LokiError, match=r"401: no org id.*--loki-tenant"):
        list(client(state, tenant=None).entries('{namespace="a"}', T0, T0 + 100))


def test_a_wrong_token_is_refused_and_never_in_the_message(state: LokiState) -> None:
    with pytest.raises(LokiError) as caught:
        list(client(state, token="wrong-secret").entries('{namespace="a"}', T0, T0 + 100))
    assert "401" in str(caught.value) and "wrong-secret" not in str(caught.value)


def test_429_and_5xx_are_retried_with_back_off(state: LokiState) -> None:
    sleeps: list[float] = []
    state.fail[:] = [429, 500, 503]
    got = list(client(state, sleeps).entries('{namespace="a"}', T0, T0 + 100))
    assert len(got) == 12 and sleeps == [0.25, 0.5, 1.0]
    state.fail[:] = [503] * 10
    with pytest.raises(LokiError, match="503"):
        list(client(state).entries('{namespace="a"}', T0, T0 + 100))


def test_a_limit_above_loki_s_maximum_is_loki_s_400(state: LokiState) -> None:
    with pytest.raises(LokiError, match="max entries limit per query exceeded"):
        list(client(state).entries('{namespace="a"}', T0, T0 + 100, limit=6000))
