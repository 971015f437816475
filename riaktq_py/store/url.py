"""Store URLs: pick and configure a backend from one string (API and CLI ``--store``).

=============================================================  ======================
URL                                                            store
=============================================================  ======================
``riak://host:port[,host:port...]/bucket_type/bucket[?opts]``  :class:`RiakStore`
``sqlite:///abs/path.db``, ``sqlite://rel/path.db``            :class:`SqliteStore`
``sqlite://:memory:``, ``:memory:``, a plain path              :class:`SqliteStore`
=============================================================  ======================

Riak options (query string): ``pool`` (connections per node, 4), ``timeout``
(seconds per request, 5), ``shards`` (index shards per status, 16), ``index``
(a Yokozuna index: query Solr instead of the sharded index), ``r``, ``pr``,
``w``, ``pw``, ``dw`` (an integer or one/quorum/all/default; riaktq's
defaults pr=pw=quorum).
"""

from __future__ import annotations

import math
import os
from typing import TypeVar
from urllib.parse import parse_qs, unquote

from riaktq_py.errors import ConfigError
from riaktq_py.store.base import Store

_N = TypeVar("_N", int, float)
_RIAK_OPTIONS = {"pool", "timeout", "shards", "index", "r", "pr", "w", "pw", "dw"}


def as_store(store: Store | str | os.PathLike[str]) -> Store:
    """A store as given, the store a URL names, or the SQLite file at a path object."""
    if isinstance(store, Store):
        return store
    if isinstance(store, os.PathLike):
        from riaktq_py.store.sqlite import SqliteStore

        return SqliteStore(os.fspath(store))  # a path, not a URL: nothing to unquote
    if isinstance(store, str):
        return open_store(store)
    raise ConfigError(f"store must be a Store, a store URL or a path, got {store!r}")


def open_store(url: str) -> Store:
    """The store a URL names; :class:`ConfigError` naming the problem otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"store URL must be a non-empty string, got {url!r}")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _sqlite(url)
    if scheme == "sqlite":
        path = rest
        if not path:
            raise ConfigError(f"store URL {url!r}: sqlite URL has no path")
        return _sqlite(path)
    if scheme == "riak":
        return _riak(url, rest)
    raise ConfigError(f"store URL {url!r}: unknown scheme {scheme!r} (use riak:// or sqlite://)")


def _sqlite(path: str) -> Store:
    from riaktq_py.store.sqlite import SqliteStore

    return SqliteStore(unquote(path))


def _riak(url: str, rest: str) -> Store:
    from riaktq_py.store.riak import Quorum, RiakStore
    from riaktq_py.store.riak.store import parse_node

    location, _, query = rest.partition("?")
    hosts, _, path = location.partition("/")
    parts = [unquote(p) for p in path.split("/")] if path else []
    if not hosts:
        raise ConfigError(f"store URL {url!r}: riak URL has no host:port")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"store URL {url!r}: riak URL path must be /bucket_type/bucket")
    try:
        options = {k: v[-1] for k, v in parse_qs(query, strict_parsing=bool(query)).items()}
    except ValueError as exc:
        raise ConfigError(f"store URL {url!r}: bad query string: {exc}") from exc
    unknown = options.keys() - _RIAK_OPTIONS
    if unknown:
        raise ConfigError(
            f"store URL {url!r}: unknown riak option(s) {sorted(unknown)};"
            f" known: {sorted(_RIAK_OPTIONS)}"
        )
    nodes = []
    for host in hosts.split(","):
        try:
            nodes.append(parse_node(host))
        except ConfigError as exc:
            raise ConfigError(f"store URL {url!r}: {exc}") from None
    try:
        quorum = Quorum(
            **{
                k: int(options[k]) if options[k].isdigit() else options[k]
                for k in ("r", "pr", "w", "pw", "dw")
                if k in options
            }
        )
    except ConfigError as exc:
        raise ConfigError(f"store URL {url!r}: {exc}") from None
    return RiakStore(
        nodes,
        parts[0],
        parts[1],
        pool_size=_number(url, "pool", options.get("pool", "4"), int),
        timeout=_number(url, "timeout", options.get("timeout", "5"), float),
        shards=_number(url, "shards", options.get("shards", "16"), int),
        quorum=quorum,
        search_index=options.get("index") or None,
    )


def _number(url: str, name: str, text: str, kind: type[_N]) -> _N:
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"store URL {url!r}: {name} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"store URL {url!r}: {name} must be a finite number, got {text!r}")
    if value <= 0:
        raise ConfigError(f"store URL {url!r}: {name} must be > 0, got {text!r}")
    return value
