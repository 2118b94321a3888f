"""One instant query over a long window, asked in pieces when the server refuses it whole.

Shared servers limit what a query may load (Prometheus' ``--query.max-samples`` and
``--query.timeout``, VictoriaMetrics' ``-search.maxSamplesPerQuery``, Thanos' and Mimir's sample
limits). A query over ``[window]`` ending at ``end`` is then the same query over ``window/k`` at
``k`` evaluation times that tile the window, its pieces sharing their edges: one range query of
``k`` steps (which the client halves again if the server refuses it too), combined per label set.

- ``sum`` for ``increase()``: a sample on an edge ends one piece and starts the next, so a counter's
  increases add. Prometheus extrapolates a series that starts or ends inside the window by half a
  scrape at its average rate, and a piece averages over itself, not the window: series born inside
  the window differ by that (measured: 0.03 % of the canary's requests on the bundled day, 0 on its
  5xx); series that span the window, exactly.
- ``min`` / ``max`` for ``min_over_time`` / ``max_over_time`` (of a subquery): exact, the subquery's
  grid is absolute, so a piece's points are the window's.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

import pandas as pd

from reliability.errors import QueryTooLarge
from reliability.source.frames import label_columns, utc
from reliability.source.prom import PrometheusClient
from reliability.source.promql import format_duration

MAX_PIECES = 64  # 2, 4, ... 64 pieces; then the refusal is the answer (INCONCLUSIVE)
Combine = Literal["sum", "min", "max"]


def over_window(client: PrometheusClient, query: Callable[[str], str], start: datetime, end: datetime,
                how: Combine) -> pd.DataFrame:
    """``query(range)`` evaluated at ``end`` over ``[start, end]``, as :meth:`PrometheusClient.query`
    answers it (columns: labels, ``time``, ``value``), in pieces combined with ``how`` if refused whole.

    Raises :class:`QueryTooLarge` when even :data:`MAX_PIECES` pieces are refused, naming what to do.
    """
    start, end = utc(start), utc(end)
    seconds = (end - start).total_seconds()
    try:
        return client.query(query(format_duration(seconds)), end)
    except QueryTooLarge:
        pieces = 2
    while True:
        try:
            return tiled(client, query, start, end, pieces, how)
        except QueryTooLarge as exc:
            if pieces >= MAX_PIECES:
                raise QueryTooLarge(f"{exc}\n  (the window was also asked in {MAX_PIECES} pieces)", url=exc.url,
                                    error_type=exc.error_type, query=exc.query) from None
            pieces *= 2


def tiled(client: PrometheusClient, query: Callable[[str], str], start: datetime, end: datetime, pieces: int,
          how: Combine) -> pd.DataFrame:
    """``query`` over ``pieces`` adjacent pieces that tile [start, end] (one range query, a step per
    piece), combined per label set with ``how``; the same columns as an instant answer at ``end``."""
    start, end = utc(start), utc(end)
    step = (end - start).total_seconds() / pieces
    frame = client.query_range(query(format_duration(step)), start + timedelta(seconds=step), end, step)
    if frame.empty:
        return frame
    labels = label_columns(frame)
    combined = (frame.groupby(labels, as_index=False)["value"].agg(how) if labels else
                pd.DataFrame({"value": [frame["value"].agg(how)]}))
    combined["time"] = pd.Timestamp(end)
    return combined[[*labels, "time", "value"]]
