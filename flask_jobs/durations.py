"""Durations written as ``"30d"``, ``"1h30m"``, ``"5s"`` or a number of seconds."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["parse_duration"]

_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")


#: The longest duration accepted (seconds): 100 years, far below what ``timedelta`` holds.
LONGEST = 36500 * 86400


def parse_duration(value: object) -> timedelta:
    """Parse seconds or a string like ``"1w"``, ``"1h30m"``; `ValueError` if invalid."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(
                    f"{value!r} is not a duration: use seconds or e.g. "
                    "'30s', '5m', '1h30m', '7d', '1w'"
                )
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"{value!r} is not a duration: use seconds or e.g. '30s', '1h30m', '7d'")
    if not seconds > 0:  # NaN too
        raise ValueError(f"{value!r} is not a positive duration")
    if seconds > LONGEST:
        raise ValueError(f"{value!r} is too long a duration: at most 100 years ('36500d')")
    return timedelta(seconds=seconds)
