"""A recurring schedule: what to open (handler/tags, input, priority, retry) and when.

The timing is either a 5-field cron expression read in an IANA timezone
(``cron`` + ``timezone``) or a fixed ``interval`` in whole seconds. Policies:

=============  ==========================================================================
``misfire``    what to do with occurrences missed while no scheduler ran (late by more
               than the step's grace): ``skip`` them, run the ``latest`` one once, or run
               ``all`` those within the last ``catchup`` seconds
``overlap``    ``skip`` an occurrence while the previous occurrence's task is todo or
               nextup, or ``allow`` it
=============  ==========================================================================

A :class:`RecurringSchedule` validates itself when built: a bad value raises
:class:`~riaktq_py.errors.ConfigError` naming the setting. Besides its
definition it carries its state: ``created``, ``start`` (when the current
timing began: creation, or the last change of cron/timezone/interval; interval
occurrences are ``start + k * interval``, k >= 1, with ``start`` cut to whole
seconds), ``last_due`` (the last occurrence handled), ``last_task`` (the key of
the last occurrence opened, for the overlap policy) and ``resumed_at``
(occurrences due before it were paused).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import re
from collections.abc import Iterable
from typing import Any, TypedDict, Unpack
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from riaktq_py import payload
from riaktq_py.errors import ConfigError, PayloadError, RiaktqError
from riaktq_py.task import jsonable

#: names: letters, digits and ``_ . - /``; they go into task keys
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,199}")
CRON_ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
#: the fields whose change restarts the timing (``start`` moves to the time of the change)
TIMING_FIELDS = frozenset({"cron", "timezone", "interval"})
_TAG_SEPARATOR = "\x1f"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Misfire(enum.StrEnum):
    """What to do with occurrences missed while no scheduler ran."""

    SKIP = "skip"
    LATEST = "latest"
    ALL = "all"


class Overlap(enum.StrEnum):
    """What to do with an occurrence while the previous one's task is todo or nextup."""

    SKIP = "skip"
    ALLOW = "allow"


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            "schedule name must be 1 to 200 letters, digits or '_.-/', starting with a letter"
            f" or digit, got {name!r}"
        )
    return name


def check_cron(expression: object) -> str:
    """A 5-field cron expression (or an @alias) that matches some time, normalised."""
    if not isinstance(expression, str) or not expression.strip():
        raise ConfigError(f"cron must be a non-empty string, got {expression!r}")
    return _checked_cron(expression)


@functools.lru_cache(maxsize=1024)
def _checked_cron(expression: str) -> str:
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text not in CRON_ALIASES:
            raise ConfigError(
                f"invalid cron expression {expression!r}: unknown alias"
                f" (known: {', '.join(sorted(CRON_ALIASES))})"
            )
    elif len(text.split(" ")) != 5:
        raise ConfigError(
            f"invalid cron expression {expression!r}: it needs 5 fields"
            " (minute hour day-of-month month day-of-week)"
        )
    try:
        croniter(text, dt.datetime(2000, 1, 1)).get_next(dt.datetime)
    except CroniterBadDateError:
        raise ConfigError(f"invalid cron expression {expression!r}: it never matches") from None
    except (CroniterError, ValueError, KeyError) as exc:
        raise ConfigError(f"invalid cron expression {expression!r}: {exc}") from None
    return text


def check_timezone(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"timezone must be an IANA timezone name, got {name!r}")
    return _checked_timezone(name)


@functools.lru_cache(maxsize=256)
def _checked_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown timezone {name!r} (use an IANA name such as 'Europe/Berlin' or 'UTC')"
        ) from None
    return name


def _int(name: str, value: object, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _policy(kind: type[enum.StrEnum], setting: str, value: object) -> Any:
    known = [m.value for m in kind]
    if not isinstance(value, str) or value not in known:
        raise ConfigError(f"{setting} must be one of {', '.join(known)}, got {value!r}")
    return kind(value)


def _tag(value: object) -> str:
    if not isinstance(value, str) or not value or _TAG_SEPARATOR in value:
        raise ConfigError(f"tag must be a non-empty string without \\x1f, got {value!r}")
    return value


class ScheduleSettings(TypedDict, total=False):
    """The settings of a new schedule (``add_schedule``); missing ones take the defaults:
    timezone ``UTC``, no handler or tags, input ``None``, priority and retry 0, misfire
    and overlap ``skip``, not paused. Exactly one of ``cron`` and ``interval`` is needed.
    """

    cron: str | None
    timezone: str
    interval: int | None
    handler: str | None
    tags: Iterable[str]
    input: Any
    priority: int
    retry: int
    misfire: Misfire | str
    catchup: int | None
    overlap: Overlap | str
    paused: bool


@dataclasses.dataclass(frozen=True, slots=True)
class RecurringSchedule:
    """One stored schedule; see the module docstring. Build it with :meth:`new`."""

    name: str
    input: bytes
    created: int
    start: int
    handler: str | None = None
    tags: frozenset[str] = frozenset()
    priority: int = 0
    retry: int = 0
    cron: str | None = None
    timezone: str = "UTC"
    interval: int | None = None
    misfire: Misfire = Misfire.SKIP
    catchup: int | None = None
    overlap: Overlap = Overlap.SKIP
    paused: bool = False
    last_due: int | None = None
    last_task: str | None = None
    resumed_at: int | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if not isinstance(self.input, bytes):
            raise ConfigError(f"schedule {self.name!r}: input must be msgpack bytes")
        try:
            payload.decode(self.input, what=f"input of schedule {self.name!r}")
        except PayloadError as exc:
            raise ConfigError(str(exc)) from None
        if self.handler is not None:
            _tag(self.handler)
        object.__setattr__(self, "tags", frozenset(_tag(t) for t in self.tags))
        if self.handler is None and not self.tags:
            raise ConfigError(f"schedule {self.name!r} needs a handler or tags to route its tasks")
        _int("priority", self.priority)
        _int("retry", self.retry, 0)
        if (self.cron is None) == (self.interval is None):
            raise ConfigError(
                f"schedule {self.name!r} needs either cron (with timezone) or interval, not "
                + ("both" if self.cron is not None else "neither")
            )
        if self.cron is not None:
            object.__setattr__(self, "cron", check_cron(self.cron))
        check_timezone(self.timezone)
        if self.interval is not None:
            _int("interval (seconds)", self.interval, 1)
        object.__setattr__(self, "misfire", _policy(Misfire, "misfire", self.misfire))
        object.__setattr__(self, "overlap", _policy(Overlap, "overlap", self.overlap))
        if self.misfire is Misfire.ALL:
            if self.catchup is None:
                raise ConfigError(
                    f"schedule {self.name!r}: misfire 'all' needs a catch-up window"
                    " (catchup, in seconds)"
                )
            _int("catchup (seconds)", self.catchup, 1)
        elif self.catchup is not None:
            raise ConfigError(
                f"schedule {self.name!r}: catchup is only used with misfire 'all',"
                f" not {self.misfire.value!r}"
            )
        if not isinstance(self.paused, bool):
            raise ConfigError(f"paused must be true or false, got {self.paused!r}")
        for field in ("created", "start"):
            _int(field, getattr(self, field))
        for field in ("last_due", "resumed_at"):
            if getattr(self, field) is not None:
                _int(field, getattr(self, field))

    @classmethod
    def new(
        cls,
        name: str,
        *,
        now_us: int,
        max_payload: int = payload.DEFAULT_MAX_PAYLOAD,
        **settings: Unpack[ScheduleSettings],
    ) -> RecurringSchedule:
        """A new schedule created at ``now_us``; ``input`` is any msgpack-encodable value."""
        unknown = settings.keys() - ScheduleSettings.__optional_keys__
        if unknown:
            raise TypeError(f"unexpected schedule setting(s): {', '.join(sorted(unknown))}")
        tags = settings.get("tags", ())
        if isinstance(tags, str):
            raise ConfigError(f"tags must be a list of strings, not the string {tags!r}")
        return cls(
            name=check_name(name),
            input=payload.encode(
                settings.get("input"), limit=max_payload, what=f"input of schedule {name!r}"
            ),
            created=now_us,
            start=now_us,
            handler=settings.get("handler"),
            tags=frozenset(tags),
            priority=settings.get("priority", 0),
            retry=settings.get("retry", 0),
            cron=settings.get("cron"),
            timezone=settings.get("timezone", "UTC"),
            interval=settings.get("interval"),
            misfire=_policy(Misfire, "misfire", settings.get("misfire", Misfire.SKIP)),
            catchup=settings.get("catchup"),
            overlap=_policy(Overlap, "overlap", settings.get("overlap", Overlap.SKIP)),
            paused=settings.get("paused", False),
        )

    @property
    def input_value(self) -> Any:
        return payload.decode(self.input, what=f"input of schedule {self.name!r}")

    @property
    def task_tags(self) -> frozenset[str]:
        """The tags of the tasks it opens: its tags plus its handler."""
        return self.tags | ({self.handler} if self.handler is not None else set())

    @property
    def cursor(self) -> int:
        """Occurrences due strictly after this time are still to be handled."""
        return self.start if self.last_due is None else max(self.last_due, self.start)

    @property
    def timing(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron!r} in {self.timezone}"
        return f"every {self.interval} s"

    def replace(self, **changes: Any) -> RecurringSchedule:
        return dataclasses.replace(self, **changes)

    # -- storage form (definition only; state is kept in columns/fields of its own) --

    def definition(self) -> dict[str, Any]:
        return {
            "handler": self.handler,
            "tags": sorted(self.tags),
            "input": self.input,
            "priority": self.priority,
            "retry": self.retry,
            "cron": self.cron,
            "timezone": self.timezone,
            "interval": self.interval,
            "misfire": self.misfire.value,
            "catchup": self.catchup,
            "overlap": self.overlap.value,
            "paused": self.paused,
        }

    def encode_definition(self) -> bytes:
        return payload.encode(self.definition(), limit=2**62, what="schedule definition")

    @classmethod
    def from_parts(
        cls,
        name: str,
        definition: bytes,
        *,
        created: int,
        start: int,
        last_due: int | None,
        last_task: str | None,
        resumed_at: int | None,
    ) -> RecurringSchedule:
        fields = payload.decode(definition, what=f"definition of schedule {name!r}")
        fields["tags"] = frozenset(fields["tags"])
        return cls(
            name=name,
            created=created,
            start=start,
            last_due=last_due,
            last_task=last_task,
            resumed_at=resumed_at,
            **fields,
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly view, for the CLI."""
        view = self.definition()
        view["input"] = jsonable(self.input_value)
        view.update(
            name=self.name,
            created=self.created,
            start=self.start,
            last_due=self.last_due,
            last_task=self.last_task,
            resumed_at=self.resumed_at,
        )
        return view


def occurrence_key(name: str, due_us: int) -> str:
    """The task key of one occurrence: ``sched:<name>:<UTC ISO time>``."""
    return f"sched:{name}:{iso_utc(due_us)}"


def iso_utc(time_us: int) -> str:
    moment = _EPOCH + dt.timedelta(microseconds=time_us)
    if time_us % 1_000_000:
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ScheduleExists(ConfigError):
    """A schedule with that name exists already."""


class ScheduleNotFound(RiaktqError, LookupError):
    """No schedule is stored under that name."""
