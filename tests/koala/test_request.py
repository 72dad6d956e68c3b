"""Request building: headers and payload, against PROTOCOL.md's description of the original."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from conftest import PROTOCOL_HEADER_ROWS
from hypothesis import given
from hypothesis import strategies as st

from koala import InvalidMessagesError, KoalaError, build_headers, build_payload, encode_payload
from koala.request import content_text, is_visitor_id, new_visitor_id
from mockserver.testing.strategies import message_lists, texts

VISITOR_ID = re.compile(r"[a-z0-9]{20}")


# ---------------------------------------------------------------- headers


def test_headers_are_the_protocol_table_in_order() -> None:
    headers = build_headers()
    assert list(headers) == [name for name, _ in PROTOCOL_HEADER_ROWS]
    for name, value in PROTOCOL_HEADER_ROWS:
        if value is not None:
            assert headers[name] == value, name


@given(st.booleans())
def test_visitor_id_is_20_chars_of_a_z_0_9(real_time_data: bool) -> None:
    visitor_id = build_headers(real_time_data=real_time_data)["Visitor-ID"]
    assert VISITOR_ID.fullmatch(visitor_id)
    assert is_visitor_id(visitor_id)


def test_visitor_id_is_new_on_every_call() -> None:
    ids = {build_headers()["Visitor-ID"] for _ in range(200)}
    assert len(ids) == 200


def test_new_visitor_id_has_the_documented_shape() -> None:
    assert all(VISITOR_ID.fullmatch(new_visitor_id()) for _ in range(50))


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=20, max_size=20))
def test_given_visitor_id_is_used(visitor_id: str) -> None:
    assert build_headers(visitor_id)["Visitor-ID"] == visitor_id


@given(st.text(max_size=30))
def test_is_visitor_id_agrees_with_the_pattern(value: str) -> None:
    assert is_visitor_id(value) == bool(VISITOR_ID.fullmatch(value))


@pytest.mark.parametrize(("real_time_data", "flag"), [(False, "false"), (True, "true")])
def test_real_time_data_sets_its_flag(real_time_data: bool, flag: str) -> None:
    headers = build_headers("a" * 20, real_time_data)
    assert headers["Flag-Real-Time-Data"] == flag
    assert list(headers) == [name for name, _ in PROTOCOL_HEADER_ROWS]


# ---------------------------------------------------------------- payload


def reference_payload(model: str | None, messages: list[dict[str, str]]) -> dict[str, Any]:
    """The original's mapping, written from PROTOCOL.md (string contents only)."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    text = messages[-1]["content"]
    if system:
        text += " " + " ".join(system)
    return {
        "input": text,
        "inputHistory": [m["content"] for m in messages[:-1] if m["role"] == "user"],
        "outputHistory": [m["content"] for m in messages if m["role"] == "assistant"],
        "model": model or "gpt-4o-mini",
    }


models = st.sampled_from([None, "", "gpt-4o-mini", "gpt-4o"]) | texts()


@given(models, message_lists())
def test_payload_matches_the_reference_model(
    model: str | None, messages: list[dict[str, str]]
) -> None:
    expected = reference_payload(model, messages)
    assert build_payload(model, messages) == expected
    assert encode_payload(build_payload(model, messages)) == json.dumps(expected).encode()


@given(models, message_lists())
def test_encoded_payload_is_json_dumps_defaults(
    model: str | None, messages: list[dict[str, str]]
) -> None:
    body = encode_payload(build_payload(model, messages))
    assert body.isascii()  # non-ASCII escaped, as json.dumps does by default
    assert list(json.loads(body)) == ["input", "inputHistory", "outputHistory", "model"]


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def system(text: str) -> dict[str, str]:
    return {"role": "system", "content": text}


@pytest.mark.parametrize(
    ("messages", "input_", "input_history", "output_history"),
    [
        ([user("u1"), assistant("a1"), user("u2")], "u2", ["u1"], ["a1"]),
        ([system("Be brief."), user("Hi")], "Hi Be brief.", [], []),
        ([user("u1"), assistant("a1"), user("u2"), assistant("a2")],
         "a2", ["u1", "u2"], ["a1", "a2"]),
        ([system("S")], "S S", [], []),
        ([system("S1"), user("U"), system("S2")], "S2 S1 S2", ["U"], []),
        ([user("u"), {"role": "developer", "content": "d"}, {"role": "tool", "content": "t"}],
         "t", ["u"], []),
    ],
)  # fmt: skip
def test_protocol_examples(
    messages: list[dict[str, str]], input_: str, input_history: list[str], output_history: list[str]
) -> None:
    expected = {
        "input": input_,
        "inputHistory": input_history,
        "outputHistory": output_history,
        "model": "gpt-4o-mini",
    }
    assert build_payload(None, messages) == expected
    assert encode_payload(build_payload("", messages)) == json.dumps(expected).encode()


def test_payload_body_is_byte_for_byte_the_original() -> None:
    body = encode_payload(build_payload(None, [system("Sé"), user("Hi 😀")]))
    assert body == (
        b'{"input": "Hi \\ud83d\\ude00 S\\u00e9", "inputHistory": [], '
        b'"outputHistory": [], "model": "gpt-4o-mini"}'
    )


@given(models, message_lists(parts=True))
def test_messages_are_never_mutated(model: str | None, messages: list[dict[str, Any]]) -> None:
    before = copy.deepcopy(messages)
    build_payload(model, messages)
    assert messages == before


def expected_text(content: Any) -> str:
    """The documented joining of a list of parts: text parts and bare strings, in order."""
    if isinstance(content, str):
        return content
    return "".join(
        part if isinstance(part, str) else part["text"]
        for part in content
        if isinstance(part, str) or part.get("type") == "text"
    )


@given(message_lists(parts=True))
def test_list_of_parts_is_sent_as_its_joined_text(messages: list[dict[str, Any]]) -> None:
    flattened = [{"role": m["role"], "content": expected_text(m["content"])} for m in messages]
    assert build_payload(None, messages) == reference_payload(None, flattened)


def test_list_of_parts_with_a_system_message_is_joined_not_mutated() -> None:
    parts = [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}]
    messages = [{"role": "system", "content": [{"type": "text", "text": "S"}]}, user("u")]
    messages.append({"role": "user", "content": parts})
    payload = build_payload(None, messages)
    assert payload["input"] == "hi S"
    assert payload["inputHistory"] == ["u"]
    assert parts == [
        {"type": "text", "text": "hi"},
        {"type": "image_url", "image_url": {"url": "x"}},
    ]


def test_part_without_type_counts_as_text() -> None:
    assert content_text([{"text": "a"}, "b"], 0) == "ab"


# ---------------------------------------------------------------- invalid messages

INVALID = [
    ([], None, "empty"),
    ((), None, "empty"),
    ("hello", None, "str"),
    (b"hello", None, "bytes"),
    (None, None, "NoneType"),
    ({"role": "user", "content": "x"}, None, "dict"),
    (42, None, "int"),
    ([user("ok"), "not a mapping"], 1, "str"),
    ([user("ok"), None], 1, "NoneType"),
    ([{"content": "x"}], 0, "'role'"),
    ([user("ok"), user("ok"), {"role": "user"}], 2, "'content'"),
    ([{"role": 1, "content": "x"}], 0, "int"),
    ([{"role": None, "content": "x"}], 0, "NoneType"),
    ([user("ok"), {"role": "user", "content": None}], 1, "None"),
    ([{"role": "user", "content": 7}], 0, "int"),
    ([{"role": "system", "content": {"text": "x"}}], 0, "dict"),
    ([{"role": "user", "content": [{"type": "text"}]}], 0, "part 0"),
    ([{"role": "user", "content": ["a", {"type": "text", "text": 5}]}], 0, "part 1"),
    ([{"role": "user", "content": ["a", "b", 3]}], 0, "part 2"),
    ([{"role": "user", "content": [None]}], 0, "part 0"),
]


@pytest.mark.parametrize(("messages", "index", "detail"), INVALID)
def test_invalid_messages_raise_a_value_error_naming_the_index(
    messages: Any, index: int | None, detail: str
) -> None:
    with pytest.raises(InvalidMessagesError) as raised:
        build_payload(None, messages)
    error = raised.value
    assert isinstance(error, ValueError)
    assert isinstance(error, KoalaError)
    assert error.index == index
    where = "messages" if index is None else f"messages[{index}]"
    assert str(error).startswith(where + ":")
    assert detail in str(error)


bad_messages = st.one_of(
    st.none(),
    st.integers(),
    texts(),
    st.lists(st.integers(), max_size=2),
    st.fixed_dictionaries({"content": texts()}),
    st.fixed_dictionaries({"role": st.sampled_from(["user", "system"])}),
    st.fixed_dictionaries({"role": st.integers() | st.none(), "content": texts()}),
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system"]), "content": st.none() | st.integers()}
    ),
)


@given(message_lists(max_size=4), st.data())
def test_first_bad_message_is_named_wherever_it_is(
    messages: list[dict[str, Any]], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(messages)))
    messages.insert(index, data.draw(bad_messages))
    with pytest.raises(InvalidMessagesError) as raised:
        build_payload(None, messages)
    assert raised.value.index == index
    assert f"messages[{index}]" in str(raised.value)


#: The same cases, with the exact message each must give.
INVALID_MESSAGES = [
    ([], "messages: is empty; at least one message is needed"),
    ("hello", "messages: expected a list of messages, got str"),
    (None, "messages: expected a list of messages, got NoneType"),
    (
        [user("ok"), "x"],
        "messages[1]: has type str; expected a mapping with 'role' and 'content'",
    ),
    ([{"content": "x"}], "messages[0]: has no 'role'"),
    ([{"role": "user"}], "messages[0]: has no 'content'"),
    ([{"role": 1, "content": "x"}], "messages[0]: 'role' has type int; expected a string"),
    (
        [{"role": "user", "content": None}],
        "messages[0]: 'content' is None; expected a string or a list of parts",
    ),
    (
        [{"role": "user", "content": 7}],
        "messages[0]: 'content' has type int; expected a string or a list of parts",
    ),
    (
        [{"role": "user", "content": [{"type": "text"}]}],
        "messages[0]: content part 0 is a text part without a string 'text'",
    ),
    (
        [{"role": "user", "content": ["a", "b", 3]}],
        "messages[0]: content part 2 has type int; expected a string or a mapping",
    ),
]


@pytest.mark.parametrize(("messages", "message"), INVALID_MESSAGES)
def test_invalid_messages_say_exactly_what_is_wrong(messages: Any, message: str) -> None:
    with pytest.raises(InvalidMessagesError) as raised:
        build_payload(None, messages)
    assert str(raised.value) == message
    assert raised.value.problem == message.split(": ", 1)[1]
