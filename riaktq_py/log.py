"""Structured logging: one place that names the logger riaktq-py uses."""

from __future__ import annotations

from typing import Any

import structlog


def get_logger(**bindings: Any) -> Any:
    """The riaktq-py logger, with ``bindings`` attached to every entry."""
    return structlog.get_logger("riaktq_py").bind(**bindings)
