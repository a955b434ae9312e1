"""A route (the steps for one kind of message) and how a route key finds it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from posdoctor.host.pipeline import Step


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    steps: tuple[Step, ...]


def find_route(key: str, routes: Mapping[str, Route]) -> Route | None:
    """The route for a key: an exact entry, else the first matching `*` pattern."""
    route = routes.get(key)
    if route is not None:
        return route
    for pattern, candidate in routes.items():
        if "*" in pattern and fnmatchcase(key, pattern):
            return candidate
    return None
