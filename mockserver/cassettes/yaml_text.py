"""PyYAML for cassettes: the safe loader that reads them and the style they are written in.

Only :mod:`mockserver.cassettes.cassette` imports this module, and late, where a text is
actually parsed or written: importing PyYAML takes about 30 ms (its pure-Python reader compiles
a Unicode regex even when libyaml's loader is used), which a ``serve`` whose cassettes are all
in the parse cache (:mod:`mockserver.cassettes.parse_cache`) does not pay.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["LOADER", "FlowDict", "FlowList", "YAMLError", "dump", "first_alias", "load"]

#: libyaml's loader parses the bundled cassettes about six times faster than the pure-Python
#: one; both are safe loaders (``!!binary`` -> bytes; Python tags refused).
LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YAMLError = yaml.YAMLError


def load(text: bytes | str) -> Any:
    """The data of ``text`` by the safe :data:`LOADER` (:class:`YAMLError` when it is no YAML)."""
    return yaml.load(text, Loader=LOADER)  # a safe loader


def first_alias(text: bytes | str) -> int | None:
    """The 0-based line of the first alias (``*name``) in ``text``, -1 if it has no position;
    None without one. The scan is of events (lazy: nothing is expanded); YAMLError when the
    text is no YAML before an alias is reached."""
    for event in yaml.parse(text, Loader=LOADER):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            return mark.line if mark is not None else -1
    return None


class FlowList(list[Any]):
    """A list written on one line (header values)."""


class FlowDict(dict[str, Any]):
    """A mapping written on one line (status, chunk entries)."""


class _Dumper(yaml.SafeDumper):
    pass


_YAML_LINE_BREAKS = frozenset("\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Multi-line text (event-stream bodies) as a literal block where YAML can hold it exactly;
    # PyYAML falls back to a double-quoted string when it cannot (CR, trailing spaces...).
    style = "|" if "\n" in value and len(value) > 40 else None
    if _YAML_LINE_BREAKS.intersection(value):
        # NEL, LS and PS are line breaks to YAML: written raw (plain, quoted or literal) they
        # read back as a newline or a space. A double-quoted scalar escapes them (\N, \L, \P).
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(
    FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)
_Dumper.add_representer(
    FlowDict, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True)
)


def dump(data: Any) -> str:
    """``data`` as cassette YAML: keys in their order, text unescaped, long lines kept whole,
    :class:`FlowList` and :class:`FlowDict` on one line."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=4096,
        default_flow_style=False,
    )
