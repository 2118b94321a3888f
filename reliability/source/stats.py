"""What a client asked and how much it cost, counted per client and per branch.

A branch (``PrometheusClient.branch``) runs on its own thread but shares the session,
whose response hook cannot know which branch sent the request; ``calling`` tells it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

import requests

calling = threading.local()  # the Stats of the request running on this thread (see PrometheusClient._remember)


@dataclass(frozen=True)
class QueryRecord:
    """One query as run, for the report's provenance section."""

    kind: str                       # "instant", "range" or "api"
    query: str
    time: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    step: float | None = None
    http_requests: int = 0
    seconds: float = 0.0
    series: int = 0
    pieces: int = 1                 # > 1: the server refused it whole, it was asked in this many pieces


@dataclass
class Stats:
    """What one client (or branch) asked: HTTP requests, query records, the last answer."""

    http_requests: int = 0
    records: list[QueryRecord] = field(default_factory=list)
    last_response: requests.Response | None = None  # shared by scoped copies, like the session
    parent: Stats | None = None  # a branch also counts in the client it branched from

    def count(self, response: requests.Response) -> None:
        self.last_response = response
        self.http_requests += 1
        if self.parent is not None:
            self.parent.count(response)

    def add(self, record: QueryRecord) -> None:
        self.records.append(record)
        if self.parent is not None:
            self.parent.add(record)


def count_refusal(stats: Stats, key: tuple[str, ...], exc: Exception) -> None:
    """An instant query the server refused whole for its size, counted so the report can say how many
    were asked again in pieces (a replay from the snapshot counts the same)."""
    from reliability.errors import QueryTooLarge

    if isinstance(exc, QueryTooLarge) and key[0] == "instant":
        stats.add(QueryRecord("instant", key[1], pieces=0))
