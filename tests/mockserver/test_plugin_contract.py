"""The plugin as a contract-test harness, as a user meets it: a test folder with no conftest,
run by pytest, and which of its tests pass and which fail (and why)."""

from __future__ import annotations

import pytest
from pytester_runs import outcomes, run_inline

pytest_plugins = ["pytester"]

USER_TESTS = """
import json
import os
import urllib.error
import urllib.request

import pytest
from koala import Koala, build_headers

HI = [{"role": "user", "content": "Hello"}]
GOOD_BODY = {"input": "Hi", "inputHistory": [], "outputHistory": [], "model": "gpt-4o-mini"}


def post(mock, body, headers=None):
    data = json.dumps(body).encode()
    request = urllib.request.Request(mock.api_endpoint, data=data, method="POST")
    for name, value in (headers or {"Content-Type": "application/json"}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def correct_headers():
    return {**build_headers("abcdefghij0123456789"), "Content-Type": "application/json"}


def test_a_correct_client_passes(koala_mock):
    assert "".join(Koala.create_completion("gpt-4o-mini", HI))  # KOALA_API_ENDPOINT is set


def test_a_wrong_body_fails_the_test(koala_mock):
    assert post(koala_mock, {"input": 42, "inputHistory": [], "outputHistory": []}) == 422


def test_header_deviations_pass_when_not_strict(koala_mock):
    assert post(koala_mock, GOOD_BODY) == 200  # 13 header deviations: warnings only


@pytest.mark.koala_mock(strict=True)
def test_header_deviations_fail_a_strict_test(koala_mock):
    assert post(koala_mock, GOOD_BODY) == 200


def test_correct_headers_pass_strict_too(koala_mock):
    koala_mock.begin_test(strict=True)
    assert post(koala_mock, GOOD_BODY, correct_headers()) == 200


def test_bad_requests_on_purpose(koala_mock):
    koala_mock.allow_contract_errors()
    assert post(koala_mock, {"input": 42}) == 422
    (entry,) = koala_mock.requests
    assert entry["verdict"]["errors"][0]["field"] == "input"


@pytest.mark.koala_mock(allow_contract_errors=True)
def test_bad_requests_on_purpose_by_marker(koala_mock):
    assert post(koala_mock, {"model": None}) == 422


def test_a_failing_test_shows_the_violations_too(koala_mock):
    post(koala_mock, {"input": []})
    assert False, "the test's own failure"


def test_a_test_may_stop_its_server(koala_mock):
    post(koala_mock, {"input": 42})
    koala_mock.stop()


def test_the_endpoint_variable_follows_the_fixture(koala_mock):
    assert os.environ["KOALA_API_ENDPOINT"] == koala_mock.api_endpoint


def test_the_endpoint_variable_is_restored():
    assert os.environ["KOALA_API_ENDPOINT"] == "http://restored.invalid/api/gpt/"
"""


@pytest.fixture
def user_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    monkeypatch.setenv("KOALA_API_ENDPOINT", "http://restored.invalid/api/gpt/")
    pytester.makepyfile(test_user=USER_TESTS)
    return run_inline(pytester)


def test_which_user_tests_pass_and_fail(user_run: pytest.RunResult) -> None:
    assert outcomes(user_run) == {
        "test_a_correct_client_passes": "passed",
        "test_a_wrong_body_fails_the_test": "failed",
        "test_header_deviations_pass_when_not_strict": "passed",
        "test_header_deviations_fail_a_strict_test": "failed",
        "test_correct_headers_pass_strict_too": "passed",
        "test_bad_requests_on_purpose": "passed",
        "test_bad_requests_on_purpose_by_marker": "passed",
        "test_a_failing_test_shows_the_violations_too": "failed",
        "test_a_test_may_stop_its_server": "passed",
        "test_the_endpoint_variable_follows_the_fixture": "passed",
        "test_the_endpoint_variable_is_restored": "passed",
    }


def test_the_failure_names_the_request_field_and_problem(user_run: pytest.RunResult) -> None:
    user_run.stdout.fnmatch_lines(
        [
            "*koala_mock: 1 request broke the Koala API contract:",
            "request #1 POST /api/gpt/ (status 422):",
            "  - input: expected a string, got number 42",
            "  - model: expected a string, got nothing (the field is missing)",
            "*allow_contract_errors()*",
        ]
    )


def test_the_strict_failure_names_the_header_warnings(user_run: pytest.RunResult) -> None:
    user_run.stdout.fnmatch_lines(
        [
            "*koala_mock: 1 request broke the Koala API contract (strict: warnings count):",
            "request #1 POST /api/gpt/ (status 200):",
            "  - header User-Agent: expected 'Mozilla/5.0 *', got 'Python-urllib/*'",
            "  - header Accept: expected 'text/event-stream', got nothing (missing)",
        ]
    )
    assert "header Visitor-ID: expected 20 characters from a-z0-9" in user_run.stdout.str()


def test_a_failed_test_reports_its_violations_in_a_section(user_run: pytest.RunResult) -> None:
    user_run.stdout.fnmatch_lines(
        ["*the test's own failure*", "*Captured koala-mock call*", "*input: expected a string*"]
    )


REPLAY_TESTS = """
import pytest
from koala import ResponseStatusError
from mockserver.config import MockConfig

HELLO = [{"role": "user", "content": "Hello"}]
UNRECORDED = [{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Hello"}]


@pytest.fixture
def koala_mock_config():
    return MockConfig(mode="replay", speed=0)


def test_a_recorded_conversation_passes(koala_provider):
    assert "".join(koala_provider.create_completion("gpt-4o-mini", HELLO))


def test_an_unrecorded_one_fails_even_when_the_error_is_expected(koala_provider):
    with pytest.raises(ResponseStatusError):
        "".join(koala_provider.create_completion("gpt-4o-mini", UNRECORDED))


@pytest.mark.koala_mock(allow_contract_errors=True)
def test_unless_allowed(koala_mock, koala_provider):
    with pytest.raises(ResponseStatusError):
        "".join(koala_provider.create_completion("gpt-4o-mini", UNRECORDED))
    assert koala_mock.requests[0]["served_by"]["nearest"] == "greeting"
"""


SESSION_TESTS = """
import pytest
from koala import Koala

HI = [{"role": "user", "content": "Hello"}]
PORTS = []


def test_first(koala_mock_session):
    PORTS.append(koala_mock_session.port)
    koala_mock_session.respond_with(["stubbed"])
    koala_mock_session.fault("rate_limit", times=5)
    koala_mock_session.admin("POST", "/__admin/faults", {"fault": "server_error"})
    assert koala_mock_session.admin("GET", "/__admin/health")["stubs"] == 1


def test_second_sees_a_reset_server(koala_mock_session):
    PORTS.append(koala_mock_session.port)
    assert koala_mock_session.requests == []
    assert koala_mock_session.admin("GET", "/__admin/faults")["queue"] == []
    assert koala_mock_session.admin("GET", "/__admin/stubs")["stubs"] == []
    assert "".join(Koala.create_completion("gpt-4o-mini", HI)) == "Hello! How can I help you today?"


def test_third_is_checked_for_the_contract_too(koala_mock_session):
    PORTS.append(koala_mock_session.port)
    import urllib.request, urllib.error
    request = urllib.request.Request(koala_mock_session.api_endpoint, data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request)


def test_one_server_for_the_session():
    assert len(PORTS) == 3 and len(set(PORTS)) == 1
"""


BAD_MARKER_TESTS = """
import pytest

@pytest.mark.koala_mock(strcit=True)
def test_typo(koala_mock):
    pass
"""


@pytest.mark.parametrize(
    ("source", "ended", "lines"),
    [
        pytest.param(
            REPLAY_TESTS,
            {
                "test_a_recorded_conversation_passes": "passed",
                "test_an_unrecorded_one_fails_even_when_the_error_is_expected": "failed",
                "test_unless_allowed": "passed",
            },
            [
                "request #1 POST /api/gpt/ (status 404):",
                "  - matched no cassette (mode replay); nearest: greeting",
                "      body.outputHistory: ['Hi'] != []",
            ],
            id="replay_mode_fails_a_request_no_cassette_matched",
        ),
        pytest.param(
            SESSION_TESTS,
            {
                "test_first": "passed",
                "test_second_sees_a_reset_server": "passed",
                "test_third_is_checked_for_the_contract_too": "failed",
                "test_one_server_for_the_session": "passed",
            },
            ["*input: expected a string, got nothing (the field is missing)"],
            id="the_session_server_is_reset_between_tests",
        ),
        pytest.param(
            BAD_MARKER_TESTS,
            {"test_typo": "error"},
            ["*koala_mock takes strict= and allow_contract_errors= only*"],
            id="a_bad_marker_is_a_usage_error",
        ),
    ],
)
def test_how_a_user_folders_tests_end_and_what_they_print(
    pytester: pytest.Pytester, source: str, ended: dict[str, str], lines: list[str]
) -> None:
    pytester.makepyfile(test_user=source)
    result = run_inline(pytester)
    assert outcomes(result) == ended
    result.stdout.fnmatch_lines(lines)
