"""Riak's protocol-buffers messages, defined in the project (no generated code).

The descriptors are built at import time with ``descriptor_pb2`` from the
table below and turned into classes with ``message_factory.GetMessageClass``,
in a private descriptor pool. Field numbers, types and labels are exactly
those of basho/riak_pb (``riak.proto``, ``riak_kv.proto``, ``riak_dt.proto``,
``riak_search.proto``), proto2 syntax. Only the messages the store uses are
defined. Message codes are those of ``riak_pb_messages.csv``.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

# -- message codes (riak_pb_messages.csv) ------------------------------------

ERROR_RESP = 0
PING_REQ = 1
PING_RESP = 2
DEL_REQ = 13
DEL_RESP = 14
SEARCH_QUERY_REQ = 27
SEARCH_QUERY_RESP = 28
DT_FETCH_REQ = 80
DT_FETCH_RESP = 81
DT_UPDATE_REQ = 82
DT_UPDATE_RESP = 83

#: Quorum values as riak_pb encodes them in uint32 options.
QUORUM_VALUES = {
    "one": 0xFFFFFFFE,
    "quorum": 0xFFFFFFFD,
    "all": 0xFFFFFFFC,
    "default": 0xFFFFFFFB,
}

# MapField.MapFieldType
COUNTER = 1
SET = 2
REGISTER = 3
FLAG = 4
MAP = 5
# MapUpdate.FlagOp
ENABLE = 1
DISABLE = 2
# DtFetchResp.DataType
DT_MAP = 3

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REQ, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REQUIRED, _F.LABEL_REPEATED
_TYPES = {
    "bytes": _F.TYPE_BYTES,
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "sint64": _F.TYPE_SINT64,
    "bool": _F.TYPE_BOOL,
    "float": _F.TYPE_FLOAT,
}
_LABELS = {"optional": _OPT, "required": _REQ, "repeated": _REP}

#: name -> fields (label, type, name, number[, default]); a type starting with
#: "." is a message of this file, "enum:" an enum of this file.
_MESSAGES: dict[str, list[tuple[Any, ...]]] = {
    # riak.proto
    "RpbErrorResp": [("required", "bytes", "errmsg", 1), ("required", "uint32", "errcode", 2)],
    "RpbPair": [("required", "bytes", "key", 1), ("optional", "bytes", "value", 2)],
    # riak_kv.proto
    "RpbDelReq": [
        ("required", "bytes", "bucket", 1), ("required", "bytes", "key", 2),
        ("optional", "uint32", "rw", 3), ("optional", "bytes", "vclock", 4),
        ("optional", "uint32", "r", 5), ("optional", "uint32", "w", 6),
        ("optional", "uint32", "pr", 7), ("optional", "uint32", "pw", 8),
        ("optional", "uint32", "dw", 9), ("optional", "uint32", "timeout", 10),
        ("optional", "bool", "sloppy_quorum", 11), ("optional", "uint32", "n_val", 12),
        ("optional", "bytes", "type", 13),
    ],
    # riak_dt.proto
    "MapField": [("required", "bytes", "name", 1), ("required", "enum:MapFieldType", "type", 2)],
    "MapEntry": [
        ("required", ".MapField", "field", 1), ("optional", "sint64", "counter_value", 2),
        ("repeated", "bytes", "set_value", 3), ("optional", "bytes", "register_value", 4),
        ("optional", "bool", "flag_value", 5), ("repeated", ".MapEntry", "map_value", 6),
    ],
    "DtFetchReq": [
        ("required", "bytes", "bucket", 1), ("required", "bytes", "key", 2),
        ("required", "bytes", "type", 3), ("optional", "uint32", "r", 4),
        ("optional", "uint32", "pr", 5), ("optional", "bool", "basic_quorum", 6),
        ("optional", "bool", "notfound_ok", 7), ("optional", "uint32", "timeout", 8),
        ("optional", "bool", "sloppy_quorum", 9), ("optional", "uint32", "n_val", 10),
        ("optional", "bool", "include_context", 11, "true"),
    ],
    "DtValue": [
        ("optional", "sint64", "counter_value", 1), ("repeated", "bytes", "set_value", 2),
        ("repeated", ".MapEntry", "map_value", 3), ("optional", "uint64", "hll_value", 4),
        ("repeated", "bytes", "gset_value", 5),
    ],
    "DtFetchResp": [
        ("optional", "bytes", "context", 1), ("required", "enum:DataType", "type", 2),
        ("optional", ".DtValue", "value", 3),
    ],
    "CounterOp": [("optional", "sint64", "increment", 1)],
    "SetOp": [("repeated", "bytes", "adds", 1), ("repeated", "bytes", "removes", 2)],
    "MapUpdate": [
        ("required", ".MapField", "field", 1), ("optional", ".CounterOp", "counter_op", 2),
        ("optional", ".SetOp", "set_op", 3), ("optional", "bytes", "register_op", 4),
        ("optional", "enum:FlagOp", "flag_op", 5), ("optional", ".MapOp", "map_op", 6),
    ],
    "MapOp": [("repeated", ".MapField", "removes", 1), ("repeated", ".MapUpdate", "updates", 2)],
    "DtOp": [
        ("optional", ".CounterOp", "counter_op", 1), ("optional", ".SetOp", "set_op", 2),
        ("optional", ".MapOp", "map_op", 3),
    ],
    "DtUpdateReq": [
        ("required", "bytes", "bucket", 1), ("optional", "bytes", "key", 2),
        ("required", "bytes", "type", 3), ("optional", "bytes", "context", 4),
        ("required", ".DtOp", "op", 5), ("optional", "uint32", "w", 6),
        ("optional", "uint32", "dw", 7), ("optional", "uint32", "pw", 8),
        ("optional", "bool", "return_body", 9, "false"), ("optional", "uint32", "timeout", 10),
        ("optional", "bool", "sloppy_quorum", 11), ("optional", "uint32", "n_val", 12),
        ("optional", "bool", "include_context", 13, "true"),
    ],
    "DtUpdateResp": [
        ("optional", "bytes", "key", 1), ("optional", "bytes", "context", 2),
        ("optional", "sint64", "counter_value", 3), ("repeated", "bytes", "set_value", 4),
        ("repeated", ".MapEntry", "map_value", 5), ("optional", "uint64", "hll_value", 6),
        ("repeated", "bytes", "gset_value", 7),
    ],
    # riak_search.proto
    "RpbSearchDoc": [("repeated", ".RpbPair", "fields", 1)],
    "RpbSearchQueryReq": [
        ("required", "bytes", "q", 1), ("required", "bytes", "index", 2),
        ("optional", "uint32", "rows", 3), ("optional", "uint32", "start", 4),
        ("optional", "bytes", "sort", 5), ("optional", "bytes", "filter", 6),
        ("optional", "bytes", "df", 7), ("optional", "bytes", "op", 8),
        ("repeated", "bytes", "fl", 9), ("optional", "bytes", "presort", 10),
    ],
    "RpbSearchQueryResp": [
        ("repeated", ".RpbSearchDoc", "docs", 1), ("optional", "float", "max_score", 2),
        ("optional", "uint32", "num_found", 3),
    ],
}

#: enum name -> (owning message, values)
_ENUMS: dict[str, tuple[str, dict[str, int]]] = {
    "MapFieldType": (
        "MapField",
        {"COUNTER": COUNTER, "SET": SET, "REGISTER": REGISTER, "FLAG": FLAG, "MAP": MAP},
    ),
    "DataType": ("DtFetchResp", {"COUNTER": 1, "SET": 2, "MAP": DT_MAP, "HLL": 4, "GSET": 5}),
    "FlagOp": ("MapUpdate", {"ENABLE": ENABLE, "DISABLE": DISABLE}),
}

_PACKAGE = "riaktq_py.riak_pb"


def _build() -> dict[str, Any]:
    proto = descriptor_pb2.FileDescriptorProto(
        name="riaktq_py/riak_pb.proto", package=_PACKAGE, syntax="proto2"
    )
    owners: dict[str, list[str]] = {}
    for enum_name, (owner, _values) in _ENUMS.items():
        owners.setdefault(owner, []).append(enum_name)
    for name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=name)
        for enum_name in owners.get(name, ()):
            enum = message.enum_type.add(name=enum_name)
            for value_name, number in _ENUMS[enum_name][1].items():
                enum.value.add(name=value_name, number=number)
        for label, kind, field_name, number, *default in fields:
            field = message.field.add(name=field_name, number=number, label=_LABELS[label])
            if kind.startswith("."):
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{_PACKAGE}{kind}"
            elif kind.startswith("enum:"):
                enum_name = kind[5:]
                field.type = _F.TYPE_ENUM
                field.type_name = f".{_PACKAGE}.{_ENUMS[enum_name][0]}.{enum_name}"
            else:
                field.type = _TYPES[kind]
            if default:
                field.default_value = default[0]
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    file_descriptor = pool.FindFileByName(proto.name)
    return {
        name: message_factory.GetMessageClass(file_descriptor.message_types_by_name[name])
        for name in _MESSAGES
    }


_CLASSES = _build()

# The classes are dynamic, so they are typed ``Any``; maps.py wraps them in typed calls.
RpbErrorResp: Any = _CLASSES["RpbErrorResp"]
RpbPair: Any = _CLASSES["RpbPair"]
RpbDelReq: Any = _CLASSES["RpbDelReq"]
MapField: Any = _CLASSES["MapField"]
MapEntry: Any = _CLASSES["MapEntry"]
DtFetchReq: Any = _CLASSES["DtFetchReq"]
DtValue: Any = _CLASSES["DtValue"]
DtFetchResp: Any = _CLASSES["DtFetchResp"]
CounterOp: Any = _CLASSES["CounterOp"]
SetOp: Any = _CLASSES["SetOp"]
MapUpdate: Any = _CLASSES["MapUpdate"]
MapOp: Any = _CLASSES["MapOp"]
DtOp: Any = _CLASSES["DtOp"]
DtUpdateReq: Any = _CLASSES["DtUpdateReq"]
DtUpdateResp: Any = _CLASSES["DtUpdateResp"]
RpbSearchDoc: Any = _CLASSES["RpbSearchDoc"]
RpbSearchQueryReq: Any = _CLASSES["RpbSearchQueryReq"]
RpbSearchQueryResp: Any = _CLASSES["RpbSearchQueryResp"]
