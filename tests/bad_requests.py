"""Generated bad requests as raw bytes, and a raw-socket sender that classifies the answers.

Shared by ``bench/bad_requests.py`` (10,000 of them against ``koala-mock serve``) and the
hypothesis tests in ``tests/mockserver/test_raw_requests.py``. Every request here is something a
client could send; none asks for a fault that is a 5xx or a wait by design (``server_error``,
``cloudflare_503``, ``stall``...), so any 5xx is the server's fault.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from koala import build_headers, build_payload, encode_payload

GOOD_BODY = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "hi"}]))
GOOD_HEADERS = {**build_headers("abcdefghij0123456789"), "Content-Type": "application/json"}
#: Fault texts that are all refused (unknown, malformed, out of range, unsendable).
BAD_FAULTS = (
    "meteor",
    "truncate;events=x",
    "truncate;events=-1",
    "stall;seconds=999999",
    "server_error;status=200",
    "wrong_content_type;content_type=a\x01b",
    "wrong_content_type;content_type=a\x7fb",
    "huge_event;size=1e99",
    "split_writes;size=0",
    ";;;",
    "rate_limit;retry_after=²",
    "rate_limit;nope",
)
ENCODINGS = ("gzip", "x-gzip", "deflate", "br", "zstd", "compress", "gzip, br", "identity, x")
ADMIN_PATHS = ("/__admin/requests", "/__admin/faults", "/__admin/health", "/__admin/x")
LIMITS = ("²", "-1", "1e3", "9" * 5000, "", " 1", "0x10", "١")
#: Numbers ``int()``/``float()`` would take but the server must not: other digits, underscores.
ODD_NUMBERS = ("١٢", "1_0", "０", "٣.٥", "0_5", "1e3", "inf", "nan", "+5", "5.0.1")
#: Stub headers that are all refused: control characters, headers the server sets, bad names.
BAD_STUB_HEADERS = (
    {"X-A": "a\x01b"},
    {"X-A": "a\x7fb"},
    {"X-A": "a\x0bb"},
    {"X-A": "a\x1b[31m"},
    {"X-A": "a\r\nX-Evil: 1"},
    {"Transfer-Encoding": "chunked"},
    {"Content-Length": "5"},
    {"Connection": "close"},
    {"Keep-Alive": "timeout=1"},
    {"Upgrade": "h2c"},
    {"X A": "1"},
    {"": "1"},
    {"X-A": 5},
)


@dataclass
class Tally:
    """What the answers were."""

    sent: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    no_answer: int = 0
    server_errors: int = 0
    #: 4xx answers from the app (not aiohttp's parser, whose 400s are plain text) not in JSON.
    non_json_4xx: int = 0
    parser_400s: int = 0
    #: Stubs the server took (every generated one is bad: each would answer later requests).
    accepted_stubs: int = 0
    examples: list[bytes] = field(default_factory=list)

    def add(self, request: bytes, answer: bytes) -> None:
        self.sent += 1
        status = parse_status(answer)
        if status is None:
            self.no_answer += 1
            return
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status < 300 and request.startswith(b"POST /__admin/stubs "):
            self.accepted_stubs += 1
        if status >= 500:
            self.server_errors += 1
            if len(self.examples) < 5:
                self.examples.append(request[:300])
        elif status >= 400:
            head = answer.split(b"\r\n\r\n", 1)[0].lower()
            if answer.startswith(b"HTTP/1.0 400") and b"text/plain" in head:
                self.parser_400s += 1
            elif b"content-type: application/json" not in head:
                self.non_json_4xx += 1
                if len(self.examples) < 5:
                    self.examples.append(request[:300])


def parse_status(answer: bytes) -> int | None:
    line = answer.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


def http_request(
    method: str,
    path: str,
    headers: Mapping[str, str] | Sequence[tuple[str, str]],
    body: bytes,
    host: str,
    content_length: int | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    lines += [f"{name}: {value}" for name, value in pairs]
    length = len(body) if content_length is None else content_length
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def bad_request(rng: random.Random, host: str) -> bytes:
    """One generated bad request (bytes on the wire), of a kind picked at random."""
    kind = rng.randrange(14)
    if kind == 0:  # garbage bytes
        return rng.randbytes(rng.randrange(1, 200)) + b"\r\n\r\n"
    if kind == 1:  # a body that does not decode, or an unsupported coding, or a bomb
        encoding = rng.choice(ENCODINGS)
        body = rng.choice(
            [
                rng.randbytes(rng.randrange(0, 100)),
                gzip.compress(GOOD_BODY)[: rng.randrange(1, 40)],
                zlib.compress(b" " * 5_000_000),
                gzip.compress(b"{" + b" " * 3_000_000 + b"}"),
            ]
        )
        headers = {**GOOD_HEADERS, "Content-Encoding": encoding}
        return http_request("POST", "/api/gpt/", headers, body, host)
    if kind == 2:  # bodies that are not the contract
        body = rng.choice(
            [
                b"{",
                b"[]",
                b"null",
                rng.randbytes(rng.randrange(1, 300)),
                json.dumps({"input": rng.random()}).encode(),
                b"{" * 5000,
                b'{"input": "\xff\xfe"}',
            ]
        )
        return http_request("POST", "/api/gpt/", GOOD_HEADERS, body, host)
    if kind == 3:  # bad fault header
        headers = {**GOOD_HEADERS, "X-Koala-Mock-Fault": rng.choice(BAD_FAULTS)}
        return http_request("POST", "/api/gpt/", headers, GOOD_BODY, host)
    if kind == 4:  # bad seed header
        seed = rng.choice(["-1", "x", "9" * 40, "1.5", "²", str(2**64)])
        headers = {**GOOD_HEADERS, "X-Koala-Mock-Seed": seed}
        return http_request("POST", "/api/gpt/", headers, GOOD_BODY, host)
    if kind == 5:  # bad admin query parameters
        path = "/__admin/requests?limit=" + quote(rng.choice(LIMITS), safe="")
        return http_request("GET", path, {}, b"", host)
    if kind == 6:  # bad admin bodies
        body = rng.choice(
            [
                b"not json",
                b'{"fault": 3}',
                b'{"fault": "rate_limit", "times": 100000000000}',
                b'{"fault": "wrong_content_type", "params": {"content_type": "a\\nb"}}',
                rng.randbytes(50),
            ]
        )
        headers = {"Content-Type": rng.choice(["application/json", "text/plain"])}
        return http_request("POST", "/__admin/faults", headers, body, host)
    if kind == 7:  # a foreign Host or Origin on the admin API
        headers = rng.choice([{"Origin": "http://evil.example"}, {"Origin": "null"}])
        target = rng.choice(["evil.example", host])
        return http_request("GET", rng.choice(ADMIN_PATHS), headers, b"", target)
    if kind == 8:  # wrong methods, unknown paths, odd paths
        method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
        path = rng.choice(["/api/gpt/", "/nowhere", "/a%0Ab", "/%ff%fe", "/" + "a" * 3000])
        return http_request(method, path, {}, b"", host)
    if kind == 9:  # a declared body longer than what is sent (the client then hangs up)
        return http_request("POST", "/api/gpt/", GOOD_HEADERS, GOOD_BODY[:20], host, 1000)
        # (send_raw sees the body is short and hangs up instead of waiting for an answer)
    if kind == 10:  # a body over the limit
        return http_request("POST", "/api/gpt/", GOOD_HEADERS, b"", host, 10**12)
    if kind == 11:  # stubs that are refused (an accepted one would answer every later request)
        stub = {"text": "hi", "headers": rng.choice(BAD_STUB_HEADERS)}
        body = json.dumps(stub).encode()
        headers = {"Content-Type": "application/json"}
        return http_request("POST", "/__admin/stubs", headers, body, host)
    if kind == 12:  # numbers in other digits, or a control header given twice
        return _odd_number_request(rng, host)
    # malformed framing and headers
    return rng.choice(
        [
            b"POST /api/gpt/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST /api/gpt/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: " + b"a" * 10000 + b"\r\n\r\n",
            b"GET / HTTP/9.9\r\n\r\n",
            b"GET /\x00 HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32),
        ]
    )


def _odd_number_request(rng: random.Random, host: str) -> bytes:
    number = rng.choice(ODD_NUMBERS)
    fault, param = rng.choice([("rate_limit", "retry_after"), ("slow_first_byte", "delay")])
    where = rng.randrange(4)
    if where == 0:
        headers = {**GOOD_HEADERS, "X-Koala-Mock-Fault": f"{fault};{param}={number}"}
        return http_request("POST", "/api/gpt/", headers, GOOD_BODY, host)
    if where == 1:
        body = json.dumps({"fault": fault, "params": {param: number}}).encode()
        headers = {"Content-Type": "application/json"}
        return http_request("POST", "/__admin/faults", headers, body, host)
    if where == 2:
        headers = {**GOOD_HEADERS, "X-Koala-Mock-Seed": number}
        return http_request("POST", "/api/gpt/", headers, GOOD_BODY, host)
    name = rng.choice(["X-Koala-Mock-Fault", "X-Koala-Mock-Seed"])
    value = "rate_limit" if name.endswith("Fault") else "1"
    twice = [*GOOD_HEADERS.items(), (name, value), (name, value)]
    return http_request("POST", "/api/gpt/", twice, GOOD_BODY, host)


def is_cut_short(data: bytes) -> bool:
    """True when ``data`` declares a longer body than it carries (the client will hang up)."""
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value) > len(body) and int(value) < 10**9
    return False


def _complete(answer: bytes) -> bool:
    """True once an answer with a Content-Length has all of its body."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value)
    return False


async def send_raw(host: str, port: int, data: bytes, timeout: float = 15.0) -> bytes:
    """Send ``data`` and read the answer (at most 64 KiB); b"" when none came. A request whose
    body is cut short is sent, then the connection is closed: a client that hung up."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return b""
    try:
        writer.write(data)
        await writer.drain()
        if is_cut_short(data):
            return b""
        chunks: list[bytes] = []
        size = 0
        while size < 65536 and not _complete(b"".join(chunks)):
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except (OSError, asyncio.TimeoutError):
        return b""
    finally:
        writer.close()
