"""Task payloads: msgpack only, with a size limit checked at the door."""

from __future__ import annotations

from typing import Any

import msgpack

from riaktq_py.errors import PayloadTooLarge, UndecodablePayload, UnencodablePayload

DEFAULT_MAX_PAYLOAD = 1024 * 1024  # 1 MiB

# Packing passes no options: msgpack's defaults (use_bin_type=True, strict_types=False) are
# the ones wanted, and any keyword costs ``packb`` about a third more per call.


def encode(value: Any, *, limit: int = DEFAULT_MAX_PAYLOAD, what: str = "payload") -> bytes:
    """Encode ``value`` as msgpack, refusing values msgpack cannot encode or too large."""
    try:
        data: bytes = msgpack.packb(value)  # the defaults: bytes as bin, str subclasses as str
    except (TypeError, ValueError, OverflowError) as exc:
        raise UnencodablePayload(
            f"{what} is not msgpack-encodable: {type(exc).__name__}: {exc}"
        ) from exc
    check_size(data, limit=limit, what=what)
    return data


def decode(data: bytes, *, what: str = "payload") -> Any:
    """Decode exactly one msgpack value from ``data``."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise UndecodablePayload(
            f"{what} is not valid msgpack ({len(data)} bytes): {type(exc).__name__}: {exc}"
        ) from exc


def check_size(data: bytes, *, limit: int = DEFAULT_MAX_PAYLOAD, what: str = "payload") -> None:
    if len(data) > limit:
        raise PayloadTooLarge(f"{what} is {len(data)} bytes encoded, above the limit of {limit}")


def validate(data: bytes, *, limit: int = DEFAULT_MAX_PAYLOAD, what: str = "payload") -> bytes:
    """Check already-encoded bytes: within the limit and exactly one msgpack value."""
    check_size(data, limit=limit, what=what)
    decode(data, what=what)
    return data
