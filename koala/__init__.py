"""The Koala chat provider (koala.sh), rebuilt with typed errors and a pure, incremental parser.

>>> from koala import Koala
>>> Koala.default_model
'gpt-4o-mini'
"""

from .api_key import API_KEY_ENV_VAR, ApiKey
from .base import AsyncGeneratorProvider, ProviderModelMixin
from .errors import (
    AuthenticationError,
    BotDetectedError,
    CloudflareError,
    EventTooLargeError,
    InvalidEncodingError,
    InvalidMessagesError,
    InvalidOptionError,
    KoalaConnectionError,
    KoalaError,
    KoalaTimeoutError,
    MalformedEventError,
    MissingDependencyError,
    ModelNotSupportedError,
    RateLimitError,
    ResponseStatusError,
    StreamError,
    UnexpectedContentTypeError,
)
from .provider import ENDPOINT_ENV_VAR, Koala
from .request import build_headers, build_payload, encode_payload, new_visitor_id
from .sse import EventStreamDecoder

__all__ = [
    "API_KEY_ENV_VAR",
    "ENDPOINT_ENV_VAR",
    "ApiKey",
    "AsyncGeneratorProvider",
    "AuthenticationError",
    "BotDetectedError",
    "CloudflareError",
    "EventStreamDecoder",
    "EventTooLargeError",
    "InvalidEncodingError",
    "InvalidMessagesError",
    "InvalidOptionError",
    "Koala",
    "KoalaConnectionError",
    "KoalaError",
    "KoalaTimeoutError",
    "MalformedEventError",
    "MissingDependencyError",
    "ModelNotSupportedError",
    "ProviderModelMixin",
    "RateLimitError",
    "ResponseStatusError",
    "StreamError",
    "UnexpectedContentTypeError",
    "build_headers",
    "build_payload",
    "encode_payload",
    "new_visitor_id",
]
