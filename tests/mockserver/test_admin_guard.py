"""The admin API's guard: own Host and Origin only, JSON bodies for state changes, the token."""

from __future__ import annotations

import argparse
import urllib.error
import urllib.request
from typing import Any

import pytest
from aiohttp import web
from conftest import HEADERS, Client, ClientFactory

from koala import build_payload, encode_payload
from mockserver import MockConfig, create_app
from mockserver.cli.main import ADMIN_TOKEN_ENV_VAR, _config_from_args, build_parser
from mockserver.server.admin_guard import add_admin_route
from mockserver.server.state import CONFIG
from mockserver.testing.embedded import KoalaMock

JSON = {"Content-Type": "application/json"}
BODY = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "Hi"}]))


async def call(
    client: Client, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, Any]:
    async with client.request(method, path, headers=headers, **kw) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


def port(client: Client) -> int:
    assert client.port is not None
    return client.port


async def test_own_host_names_are_answered(client: Client) -> None:
    for host in ("127.0.0.1", "localhost", "LocalHost", "[::1]", "127.0.0.2"):
        status, body = await call(
            client, "GET", "/__admin/health", {"Host": f"{host}:{port(client)}"}
        )
        assert status == 200, (host, body)


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",  # DNS rebinding: a hostile name that resolves to 127.0.0.1
        "127.0.0.1:1",  # the right name, another port
        "127.0.0.1",  # no port: port 80, which is not this server's
        "localhost.evil.example:{port}",
        "127.0.0.1:{port}@evil.example",
        "[::1:{port}",
        "127.0.0.1:²",
        "",
    ],
)
async def test_a_foreign_host_is_a_json_403(client: Client, host: str) -> None:
    status, body = await call(
        client, "GET", "/__admin/requests", {"Host": host.format(port=port(client))}
    )
    assert status == 403
    assert "Host" in body["error"] and body["status"] == 403


async def test_the_guard_covers_unknown_admin_paths_but_not_the_chat_api(client: Client) -> None:
    evil = {"Host": f"evil.example:{port(client)}"}
    status, _ = await call(client, "GET", "/__admin/nothing-here", evil)
    assert status == 403
    status, _ = await call(client, "GET", "/__admin/nothing-here")
    assert status == 404
    async with client.post("/api/gpt/", data=BODY, headers={**HEADERS, **evil}) as response:
        assert response.status == 200  # the chat API is the mock's job, for any Host


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}", "nonsense"],
)
async def test_a_foreign_origin_is_a_json_403(client: Client, origin: str) -> None:
    status, body = await call(
        client,
        "POST",
        "/__admin/faults",
        {"Origin": origin.format(port=port(client)), **JSON},
        json={"fault": "rate_limit"},
    )
    assert status == 403 and "Origin" in body["error"]
    status, faults = await call(client, "GET", "/__admin/faults")
    assert faults["queue"] == []  # nothing was queued


async def test_the_servers_own_origin_is_answered(client: Client) -> None:
    own = {"Origin": f"http://localhost:{port(client)}"}
    status, _ = await call(client, "POST", "/__admin/faults", own, json={"fault": "rate_limit"})
    assert status == 201


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_state_change_without_a_json_content_type_is_a_415(
    client: Client, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else None
    body = b'{"fault": "rate_limit"}'
    status, error = await call(client, "POST", "/__admin/faults", headers, data=body)
    assert status == 415 and "application/json" in error["error"]
    status, error = await call(client, "POST", "/__admin/cassettes/reload", headers)
    assert status == 415
    status, faults = await call(client, "GET", "/__admin/faults")
    assert faults["queue"] == []


async def test_json_content_type_with_parameters_is_accepted(client: Client) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    status, _ = await call(
        client, "POST", "/__admin/faults", headers, data=b'{"fault": "rate_limit"}'
    )
    assert status == 201


async def test_a_bodyless_delete_needs_no_content_type_but_a_text_one_is_refused(
    client: Client,
) -> None:
    status, body = await call(client, "DELETE", "/__admin/requests")
    assert status == 200 and "cleared" in body
    status, _ = await call(client, "DELETE", "/__admin/requests", {"Content-Type": "text/plain"})
    assert status == 415
    status, _ = await call(client, "DELETE", "/__admin/requests", data=b"x")
    assert status == 415


async def test_the_admin_token_is_required_on_every_admin_path(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(create_app(MockConfig(cassette_dir=None, admin_token="s3cret")))
    for path in ("/__admin/health", "/__admin/requests", "/__admin/nothing-here"):
        status, body = await call(client, "GET", path)
        assert status == 401 and "Bearer" in body["error"]
    async with client.get("/__admin/health") as response:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for wrong in ("Bearer nope", "Basic s3cret", "s3cret", "Bearer s3cre", "Bearer s3cret2"):
        status, _ = await call(client, "GET", "/__admin/health", {"Authorization": wrong})
        assert status == 401, wrong
    good = {"Authorization": "Bearer s3cret"}
    status, _ = await call(client, "GET", "/__admin/health", good)
    assert status == 200
    status, _ = await call(client, "GET", "/__admin/nothing-here", good)
    assert status == 404
    async with client.post("/api/gpt/", data=BODY, headers=HEADERS) as response:
        assert response.status == 200  # the chat API needs no token


async def test_a_route_added_with_add_admin_route_passes_the_same_checks(
    aiohttp_client: ClientFactory,
) -> None:
    app = web.Application()  # the guard needs only the config from the app
    app[CONFIG] = MockConfig(cassette_dir=None, admin_token="t0ken")

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": True})

    add_admin_route(app, "POST", "/__admin/hello", hello)
    client = await aiohttp_client(app)
    token = {"Authorization": "Bearer t0ken"}
    assert (await call(client, "POST", "/__admin/hello", {**token, **JSON}))[0] == 200
    assert (await call(client, "POST", "/__admin/hello", JSON))[0] == 401
    assert (await call(client, "POST", "/__admin/hello", token))[0] == 415
    evil = {**token, **JSON, "Host": "evil.example"}
    assert (await call(client, "POST", "/__admin/hello", evil))[0] == 403


async def test_the_journal_masks_credentials(client: Client) -> None:
    secrets = {
        "Authorization": "Bearer sk-very-secret",
        "Cookie": "cf_clearance=abc123; session=def456",
        "X-Api-Key": "key-789",
    }
    async with client.post("/api/gpt/", data=BODY, headers={**HEADERS, **secrets}) as response:
        await response.read()
    async with client.get("/__admin/requests") as response:
        text = await response.text()
        headers = (await response.json())["requests"][-1]["headers"]
    for value in ("sk-very-secret", "abc123", "def456", "key-789"):
        assert value not in text
    assert headers["Authorization"] == "Bearer SCRUBBED"
    assert headers["Cookie"] == "cf_clearance=SCRUBBED; session=SCRUBBED"
    assert headers["X-Api-Key"] == "SCRUBBED"
    assert headers["Visitor-ID"] == "abcdefghij0123456789"  # kept: tests look at it


def test_koala_mock_talks_to_a_server_with_a_token() -> None:
    with KoalaMock(MockConfig(cassette_dir=None, admin_token="embedded-token")) as mock:
        mock.fault("rate_limit")
        assert mock.admin("GET", "/__admin/faults")["queue"][0]["fault"] == "rate_limit"
        mock.reset()
        assert mock.requests == []
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(mock.url + "/__admin/health", timeout=10)
        assert refused.value.code == 401


def _config(argv: list[str]) -> tuple[MockConfig, argparse.Namespace]:
    args = build_parser().parse_args(["serve", *argv])
    return _config_from_args(args), args


def test_admin_token_from_the_flag_the_environment_or_generated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ADMIN_TOKEN_ENV_VAR, raising=False)
    assert _config([])[0].admin_token is None
    assert _config(["--admin-token", "flag-token"])[0].admin_token == "flag-token"
    config, args = _config(["--allow-remote"])
    assert config.admin_token is not None and len(config.admin_token) >= 24
    assert args.generated_admin_token is True
    assert _config(["--allow-remote"])[0].admin_token != config.admin_token
    monkeypatch.setenv(ADMIN_TOKEN_ENV_VAR, "env-token")
    assert _config([])[0].admin_token == "env-token"
    assert _config(["--allow-remote"])[0].admin_token == "env-token"
    assert _config(["--admin-token", "flag-token"])[0].admin_token == "flag-token"
    assert "env-token" not in repr(_config([])[0])  # never in a repr (logs, tracebacks)


@pytest.mark.parametrize("token", ["", "has space", "new\nline", "x" * 513, "é"])
def test_a_bad_admin_token_is_a_usage_error(token: str) -> None:
    with pytest.raises(ValueError, match="admin_token"):
        MockConfig(cassette_dir=None, admin_token=token)
