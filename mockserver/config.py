"""The mock server's settings: one class, validated when it is made."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Literal, get_args

from koala.api_key import ApiKey
from mockserver.cassettes.files import DEFAULT_MAX_CASSETTE_BYTES
from mockserver.cassettes.locations import (
    CASSETTES_ENV_VAR,
    DEFAULT_CASSETTE_DIR,
    DEFAULT_RECORD_DIR,
    SOURCE_CASSETTE_DIR,
    bundled_cassette_dir,
    default_cassette_dir,
)
from mockserver.cassettes.record_mode import RECORD_MODES
from mockserver.errors import MockServerError

__all__ = [
    "API_KEY_ENV_VAR",
    "CASSETTES_ENV_VAR",
    "DEFAULT_CASSETTE_DIR",
    "DEFAULT_JOURNAL_MAX_BYTES",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_MAX_CASSETTE_BYTES",
    "DEFAULT_MAX_GENERATED_BYTES",
    "DEFAULT_RECORD_DIR",
    "MAX_KEEPALIVE_TIMEOUT",
    "MAX_LATENCY_SECONDS",
    "MIN_JOURNAL_MAX_BYTES",
    "MIN_SPEED",
    "MODES",
    "RECORD_MODES",
    "SOURCE_CASSETTE_DIR",
    "ConfigError",
    "MockConfig",
    "Mode",
    "bundled_cassette_dir",
    "default_cassette_dir",
]

#: How the server chooses an answer (see :class:`MockConfig`).
Mode = Literal["auto", "replay", "synthetic", "fuzz"]
MODES: tuple[Mode, ...] = get_args(Mode)
#: The environment variable ``serve --api-key`` falls back to.
API_KEY_ENV_VAR = "KOALA_MOCK_API_KEY"
#: The longest pause between events ``latency`` may ask for (a larger one only hangs clients).
MAX_LATENCY_SECONDS = 60.0
#: Seconds an idle keep-alive connection is kept open (aiohttp's own default is an hour).
DEFAULT_KEEPALIVE_TIMEOUT = 15.0
MAX_KEEPALIVE_TIMEOUT = 3600.0
#: Bytes of generated answers (``huge_event``, ``split_writes``) being sent at once, at most:
#: twice the largest ``huge_event`` (64 MiB), so one of those always fits.
DEFAULT_MAX_GENERATED_BYTES = 128 * 1024 * 1024
#: The slowest replay: a hundred times slower than recorded.
MIN_SPEED = 0.01
#: The journal's default bound on stored bytes (request bodies, headers, response values).
DEFAULT_JOURNAL_MAX_BYTES = 64 * 1024 * 1024
#: The smallest bound: room for a few of the largest entries (a kept body is at most 64 KiB).
MIN_JOURNAL_MAX_BYTES = 1024 * 1024


class ConfigError(MockServerError, ValueError):
    """A ``MockConfig`` field out of range; the message names the field and the value."""


class _Default(enum.Enum):
    """An argument left out where ``None`` means something else (``cassette_dir=None``: no
    cassettes)."""

    CASSETTE_DIR = "the default cassette directory"


class MockConfig:
    """How the mock server answers. Every field has a default that suits local development.

    - ``cassette_dir``: where vcrpy cassettes are loaded from (``KOALA_MOCK_CASSETTES`` overrides
      the bundled ``cassettes/``); ``None``: no cassettes.
    - ``mode``: ``auto`` (a matching cassette, else a synthetic answer), ``replay`` (cassettes
      only; no match is a 404 naming the nearest cassette), ``synthetic`` (never cassettes),
      ``fuzz`` (``auto`` plus meaning-preserving rewriting of the stream from a seed).
    - ``seed``: the fuzz seed, 0..``fuzz.MAX_SEED``, used in ``fuzz`` mode only (``None``: a new
      random seed per request, echoed in the reply).
    - ``strict``: header deviations are 422 errors instead of journal warnings.
    - ``latency``: seconds between events of streams that have no recorded timing (at most
      ``MAX_LATENCY_SECONDS``).
    - ``speed``: time scale for recorded timing and ``latency`` (2.0 = twice as fast); 0 = no
      waiting at all; otherwise at least ``MIN_SPEED``, so that no delay grows without bound.
    - ``default_fault``: ``"NAME;param=value;..."`` applied to every request without its own.
    - ``max_body_size``: larger request bodies get a 413.
    - ``max_cassette_size``: cassette files larger than this many bytes are skipped unread
      (default 16 MiB).
    - ``keepalive_timeout``: seconds an idle keep-alive connection stays open (0.1..3600).
    - ``journal_max_bytes``: the journal keeps at most this many stored bytes (request bodies,
      headers and response values; ``DEFAULT_JOURNAL_MAX_BYTES``, 64 MiB, by default; at least
      ``MIN_JOURNAL_MAX_BYTES``, 1 MiB), besides its 10,000 entries; the oldest go first.
    - ``max_generated_bytes``: the bytes of answers made while they are sent (``huge_event``,
      ``split_writes``) in flight together, at most; an answer past it gets a JSON 503 naming
      the bound (default :data:`DEFAULT_MAX_GENERATED_BYTES`, 128 MiB).
    - ``admin_token``: when set, every ``/__admin/*`` call needs ``Authorization: Bearer TOKEN``.
    - ``record_upstream``, ``record_dir``, ``record_mode``, ``scrub``, ``keep_headers``,
      ``keep_query``: the recording proxy (see :mod:`mockserver.server.proxy`); ``record_dir``
      ``None`` means ``./cassettes`` in the working directory; ``record_mode`` is vcrpy's
      (``new_episodes`` by default: replay what the directory holds, record what is new).
      With ``record_upstream`` set, ``mode``, ``seed`` and ``default_fault`` mean nothing and
      are refused.
    - ``api_key``: the key requests of the keyed shape must carry (``Authorization: Bearer``);
      a missing or other key is a 401. ``None``: any key. Kept as an :class:`ApiKey`, so it
      shows as ``***`` in the config's repr. The browser shape never needs it.

    Configs with the same fields are equal; ``repr()`` shows every field but ``admin_token`` and
    ``api_key``. A plain class with its ``__init__`` written out, not a dataclass: defining a
    dataclass of 20 fields costs ``serve`` about 8 M instructions at import.
    """

    # The fields, in __init__'s order (repr shows them in it, as a dataclass's did).
    __slots__ = (  # noqa: RUF023
        "cassette_dir",
        "mode",
        "seed",
        "strict",
        "latency",
        "speed",
        "default_fault",
        "max_body_size",
        "max_cassette_size",
        "admin_token",
        "keepalive_timeout",
        "journal_max_bytes",
        "max_generated_bytes",
        "record_upstream",
        "record_dir",
        "record_mode",
        "scrub",
        "keep_headers",
        "keep_query",
        "api_key",
    )

    def __init__(
        self,
        cassette_dir: Path | Literal[_Default.CASSETTE_DIR] | None = _Default.CASSETTE_DIR,
        mode: Mode = "auto",
        seed: int | None = None,
        strict: bool = False,
        latency: float = 0.0,
        speed: float = 1.0,
        default_fault: str | None = None,
        max_body_size: int = 1_048_576,
        max_cassette_size: int = DEFAULT_MAX_CASSETTE_BYTES,
        admin_token: str | None = None,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
        journal_max_bytes: int = DEFAULT_JOURNAL_MAX_BYTES,
        max_generated_bytes: int = DEFAULT_MAX_GENERATED_BYTES,
        record_upstream: str | None = None,
        record_dir: Path | None = None,
        record_mode: str = "new_episodes",
        scrub: bool = True,
        keep_headers: tuple[str, ...] = (),
        keep_query: tuple[str, ...] = (),
        api_key: ApiKey | None = None,
    ) -> None:
        if cassette_dir is _Default.CASSETTE_DIR:
            cassette_dir = default_cassette_dir()  # read when the config is made
        self.cassette_dir = cassette_dir
        self.mode = mode
        self.seed = seed
        self.strict = strict
        self.latency = latency
        self.speed = speed
        self.default_fault = default_fault
        self.max_body_size = max_body_size
        self.max_cassette_size = max_cassette_size
        self.admin_token = admin_token
        self.keepalive_timeout = keepalive_timeout
        self.journal_max_bytes = journal_max_bytes
        self.max_generated_bytes = max_generated_bytes
        self.record_upstream = record_upstream
        self.record_dir = record_dir
        self.record_mode = record_mode
        self.scrub = scrub
        self.keep_headers = keep_headers
        self.keep_query = keep_query
        self.api_key = api_key
        self._check()

    def __eq__(self, other: object) -> bool:
        # (Defining __eq__ leaves the class unhashable, as a config that can change must be.)
        if not isinstance(other, MockConfig):
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        shown = (name for name in self.__slots__ if name not in _SECRET_FIELDS)
        return f"MockConfig({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def _check(self) -> None:
        """Refuse a value out of range (naming the field), and normalise the rest."""
        if self.api_key is not None and not isinstance(self.api_key, ApiKey):
            self.api_key = ApiKey(self.api_key)  # InvalidOptionError (a ValueError) if unusable
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if not 0 <= self.latency <= MAX_LATENCY_SECONDS:
            raise ConfigError(
                f"latency must be 0..{MAX_LATENCY_SECONDS:g} seconds, got {self.latency!r}"
            )
        if self.seed is not None:
            from mockserver.wire.fuzz import MAX_SEED  # late, as for faults below

            if isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
                raise ConfigError(f"seed must be an integer 0..{MAX_SEED}, got {self.seed!r}")
        if not (self.speed == 0 or MIN_SPEED <= self.speed < float("inf")):
            raise ConfigError(
                f"speed must be 0 (as fast as possible) or at least {MIN_SPEED:g}, "
                f"got {self.speed!r}"
            )
        if self.max_body_size < 1:
            raise ConfigError(f"max_body_size must be >= 1 byte, got {self.max_body_size!r}")
        if isinstance(self.max_cassette_size, bool) or self.max_cassette_size < 1:
            raise ConfigError(
                f"max_cassette_size must be >= 1 byte, got {self.max_cassette_size!r}"
            )
        if not _is_whole_number(self.max_generated_bytes, 1):
            raise ConfigError(
                f"max_generated_bytes must be a whole number >= 1, got {self.max_generated_bytes!r}"
            )
        if not 0.1 <= self.keepalive_timeout <= MAX_KEEPALIVE_TIMEOUT:
            raise ValueError(
                f"keepalive_timeout must be 0.1..{MAX_KEEPALIVE_TIMEOUT:g} seconds, "
                f"got {self.keepalive_timeout!r}"
            )
        if not _is_whole_number(self.journal_max_bytes, MIN_JOURNAL_MAX_BYTES):
            raise ConfigError(
                f"journal_max_bytes must be a whole number of at least {MIN_JOURNAL_MAX_BYTES} "
                f"bytes, got {self.journal_max_bytes!r}"
            )
        if self.admin_token is not None and not _is_token_text(self.admin_token):
            raise ConfigError(
                "admin_token must be 1..512 visible ASCII characters (no spaces), "
                f"got {len(self.admin_token)} characters"
            )
        if self.cassette_dir is not None and not isinstance(self.cassette_dir, Path):
            self.cassette_dir = Path(self.cassette_dir)
        if self.record_dir is not None and not isinstance(self.record_dir, Path):
            self.record_dir = Path(self.record_dir)
        if self.record_mode not in RECORD_MODES:
            raise ConfigError(
                f"record_mode {self.record_mode!r} is not one of {', '.join(RECORD_MODES)}"
            )
        self.keep_headers = tuple(self.keep_headers)
        self.keep_query = tuple(self.keep_query)
        if self.record_upstream is not None:
            self._check_recording()
        if self.default_fault is not None:
            from mockserver.wire.faults import (
                parse_fault_spec,  # late: faults imports nothing from here
            )

            parse_fault_spec(self.default_fault)  # raises FaultSpecError (a ValueError)

    def _check_recording(self) -> None:
        """Refuse what the recording proxy would silently ignore."""
        if self.mode != "auto":
            raise ConfigError(
                f"mode {self.mode!r} does not apply to the recording proxy: it answers from the "
                "upstream and its record directory, as record_mode says"
            )
        if self.seed is not None:
            raise ConfigError(
                "seed does not apply to the recording proxy (a request's X-Koala-Mock-Seed does)"
            )
        if self.default_fault is not None:
            raise ConfigError(
                "default_fault does not apply to the recording proxy: every answer would be the "
                "fault and nothing would be recorded (a request's X-Koala-Mock-Fault still works)"
            )

    def scaled(self, seconds: float) -> float:
        """A recorded or configured delay, scaled by ``speed`` (0 when speed is 0)."""
        if self.speed == 0 or seconds <= 0:
            return 0.0
        return seconds / self.speed


#: Fields that ``repr()`` leaves out (it goes into logs and tracebacks).
_SECRET_FIELDS = ("admin_token", "api_key")


def _is_whole_number(value: object, minimum: int) -> bool:
    """An int of at least ``minimum``; not a bool (``True`` is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_token_text(token: str) -> bool:
    return 0 < len(token) <= 512 and all("!" <= c <= "~" for c in token)
