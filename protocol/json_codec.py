"""Compact, order-preserving JSON via msgspec, with a nesting limit for untrusted input.

msgspec has no configurable depth limit: it recurses until the interpreter's recursion limit and
then raises RecursionError (roughly depth 1000). We want a much lower, explicit bound (a deeply
nested payload is cheap to send and costly to walk in every later handler), so :func:`decode_json`
first counts opening brackets with ``str.count``/``bytes.count`` (C speed). The nesting depth can
never exceed that count, so the common small message skips any further work; only documents with
more brackets than ``max_depth`` get an iterative walk of their containers after decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from protocol.errors import ProtocolError

__all__ = ["decode_json", "encode_json"]

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()
_decode = _DECODER.decode

#: Serialise ``obj`` to compact UTF-8 JSON, keeping dict insertion order (like JSON.stringify).
#: A bound method rather than a wrapper function: this is called once per outgoing message.
encode_json: Callable[[Any], bytes] = _ENCODER.encode


def decode_json(data: str | bytes, *, max_depth: int = 32) -> Any:
    """Parse untrusted JSON; any failure (syntax, NaN, trailing data, depth) is a ProtocolError.

    Depth counts arrays and objects: ``[]`` is depth 1, ``[[1]]`` depth 2.
    """
    if isinstance(data, str):
        brackets = data.count("[") + data.count("{")
    else:
        brackets = data.count(b"[") + data.count(b"{")
    try:
        obj = _decode(data)
    except RecursionError:
        raise ProtocolError("JSON nested too deeply") from None
    except (msgspec.MsgspecError, ValueError):
        # ValueError covers UnicodeEncodeError from lone surrogates in a str argument.
        raise ProtocolError("invalid JSON") from None
    if brackets > max_depth and _too_deep(obj, max_depth):
        raise ProtocolError("JSON nested too deeply")
    return obj


def _too_deep(obj: Any, max_depth: int) -> bool:
    """Iterative (never recursive) check that ``obj`` nests no deeper than ``max_depth``."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    pop = stack.pop
    push = stack.append
    while stack:
        node, depth = pop()
        if type(node) is dict:
            values: Any = node.values()
        elif type(node) is list:
            values = node
        else:
            continue
        if depth > max_depth:
            return True
        child = depth + 1
        for v in values:
            t = type(v)
            if t is dict or t is list:
                push((v, child))
    return False
