"""Retrieval reference numbers (field 37) and authorisation codes (38)."""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime


class Identifiers:
    """RRN = day of year (3) + a 9-digit number: second of day x 10,000 + sequence.

    The number never goes down within a day, so a burst of more than 10,000 a second
    borrows from the following seconds instead of repeating; a restart takes longer
    than a second, so a new process never meets the previous one's numbers.
    """

    def __init__(self) -> None:
        self._day = -1
        self._last = -1
        self._date_key: tuple[int, int, int] | None = None
        self._yday = -1
        self._auth = itertools.count(secrets.randbelow(900_000))

    def next_rrn(self, now: datetime) -> str:
        date_key = (now.year, now.month, now.day)
        if date_key != self._date_key:  # the day of the year, worked out once a day
            self._date_key, self._yday = date_key, now.timetuple().tm_yday
        day = self._yday
        if day != self._day:
            self._day, self._last = day, -1
        floor = (now.hour * 3600 + now.minute * 60 + now.second) * 10_000
        self._last = max(self._last + 1, floor)
        return f"{day:03d}{self._last % 1_000_000_000:09d}"

    def next_auth_code(self) -> str:
        return f"{next(self._auth) % 1_000_000:06d}"
