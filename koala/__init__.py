"""The Koala chat provider (koala.sh), rebuilt with typed errors and a pure, incremental parser.

>>> from koala import Koala
>>> Koala.default_model
'gpt-4o-mini'
"""

from . import errors
from .api_key import API_KEY_ENV_VAR, ApiKey
from .base import AsyncGeneratorProvider, ProviderModelMixin
from .errors import *  # noqa: F403 (the error types, errors.__all__)
from .provider import ENDPOINT_ENV_VAR, Koala
from .request import build_headers, build_payload, encode_payload, new_visitor_id
from .sse import EventStreamDecoder

__all__ = [
    "API_KEY_ENV_VAR",
    "ENDPOINT_ENV_VAR",
    "ApiKey",
    "AsyncGeneratorProvider",
    "EventStreamDecoder",
    "Koala",
    "ProviderModelMixin",
    "build_headers",
    "build_payload",
    "encode_payload",
    "new_visitor_id",
]
__all__ += errors.__all__
