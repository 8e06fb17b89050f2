"""Retention policies: which snapshots to keep, restic-style.

``keep_last`` keeps the n newest snapshots; ``keep_hourly`` / ``keep_daily`` /
``keep_weekly`` (ISO weeks) / ``keep_monthly`` / ``keep_yearly`` keep the newest snapshot of
each of the n most recent such periods that have one; ``keep_within`` keeps every snapshot
younger than a duration; ``keep_tags`` keeps every snapshot with one of the tags. A snapshot
is kept when any rule keeps it, and each graph's newest snapshot is always kept. Periods are
UTC. Forgetting removes manifests only; ``prune`` then frees the data nothing else uses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Mapping, Optional, Union

from .errors import InvalidInputError

Duration = Union[timedelta, int, float, str]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 365 * 86400}
MAX_DURATION = timedelta(days=365 * 1000)


def parse_duration(value: Duration, *, default_unit: str = "d") -> timedelta:
    """A duration: a timedelta, a number (of ``default_unit``), or text like ``"30d"``,
    ``"12h"``, ``"2w"``, ``"1y"``."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{value!r} is not a duration")
    try:
        if isinstance(value, timedelta):
            result = value
        elif isinstance(value, (int, float)):
            result = timedelta(seconds=float(value) * _UNITS[default_unit])
        elif isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdwy]?)\s*", value.lower())
            if not match:
                raise InvalidInputError(f"{value!r} is not a duration (use e.g. 30d, 12h, 2w, 1y)")
            result = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or default_unit])
        else:
            raise InvalidInputError(f"{value!r} is not a duration")
    except InvalidInputError:
        raise
    except (OverflowError, ValueError):
        raise InvalidInputError(f"{value!r} is not a usable duration (too large)") from None
    if result > MAX_DURATION:
        raise InvalidInputError(f"{value!r} is longer than 1000 years")
    if result.total_seconds() < 0:
        raise InvalidInputError("a duration must not be negative")
    return result


@dataclass(frozen=True)
class RetentionPolicy:
    """What to keep of each graph's snapshots (at least one rule must be set)."""

    keep_last: Optional[int] = None
    keep_hourly: Optional[int] = None
    keep_daily: Optional[int] = None
    keep_weekly: Optional[int] = None
    keep_monthly: Optional[int] = None
    keep_yearly: Optional[int] = None
    keep_within: Optional[timedelta] = None
    keep_tags: tuple[str, ...] = field(default=())

    _COUNTS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")

    def __post_init__(self) -> None:
        for name in self._COUNTS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise InvalidInputError(f"{name} must be a whole number >= 0, not {value!r}")
        if self.keep_within is not None:
            object.__setattr__(self, "keep_within", parse_duration(self.keep_within))
        if isinstance(self.keep_tags, str) or not all(isinstance(t, str) and t for t in self.keep_tags):
            raise InvalidInputError("keep_tags must be a list of non-empty strings")
        object.__setattr__(self, "keep_tags", tuple(self.keep_tags))
        if self.is_empty():
            raise InvalidInputError(
                "a retention policy needs at least one rule (keep_last, keep_hourly, keep_daily, "
                "keep_weekly, keep_monthly, keep_yearly, keep_within, keep_tags)"
            )

    def is_empty(self) -> bool:
        return all(getattr(self, n) is None for n in self._COUNTS) and self.keep_within is None and not self.keep_tags

    @classmethod
    def from_dict(cls, data: "Mapping[str, Any] | RetentionPolicy") -> "RetentionPolicy":
        """From a dict with the field names; ``retention_days`` / ``keep_within_days`` are
        accepted as a number of days for ``keep_within``."""
        if isinstance(data, RetentionPolicy):
            return data
        if not isinstance(data, Mapping):
            raise InvalidInputError("a retention policy must be a RetentionPolicy or a dict")
        values = dict(data)
        for alias in ("retention_days", "keep_within_days"):
            if alias in values:
                days = values.pop(alias)
                if days is not None:
                    values["keep_within"] = parse_duration(days)
        unknown = set(values) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise InvalidInputError(f"unknown retention rule(s): {sorted(unknown)}")
        if values.get("keep_within") is not None:
            values["keep_within"] = parse_duration(values["keep_within"])
        values["keep_tags"] = tuple(values.get("keep_tags") or ())
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {n: getattr(self, n) for n in self._COUNTS if getattr(self, n) is not None}
        if self.keep_within is not None:
            data["keep_within"] = f"{int(self.keep_within.total_seconds())}s"
        if self.keep_tags:
            data["keep_tags"] = list(self.keep_tags)
        return data

    def engine_json(self) -> str:
        """The policy as the engine's forget takes it (counts, ``keep_within_seconds``, ``keep_tags``)."""
        data: dict[str, Any] = {n: getattr(self, n) for n in self._COUNTS}
        data["keep_within_seconds"] = int(self.keep_within.total_seconds()) if self.keep_within is not None else None
        data["keep_tags"] = list(self.keep_tags)
        return json.dumps(data)


def as_policy(policy: Union[RetentionPolicy, Mapping[str, Any], None], **rules: Any) -> RetentionPolicy:
    """A policy from a :class:`RetentionPolicy`, a dict, or keyword rules."""
    if policy is not None and rules:
        raise InvalidInputError("pass a policy or keyword rules, not both")
    if policy is None:
        return RetentionPolicy.from_dict(rules)
    return RetentionPolicy.from_dict(policy)


__all__ = ["RetentionPolicy", "as_policy", "parse_duration"]
