"""Analysis layer: what the history says, as frozen results with a ``.summary`` frame.

- ``measure``: request and 5xx totals, 5-minute buckets and ratios, pushed down into PromQL;
- ``stats/``: confidence bounds on R, dispersion, the traffic a proof needs;
- ``budget``, ``compare``: error budget and burn rates; candidate vs stable;
- ``cache``, ``dataquality``, ``junit``: invalidation coverage, scrape gaps and resets, test results;
- ``alerts/``: rule files, alert replay over history, detection quality;
- ``breakers/``: breaker replay, what-if tuning, trip statistics.

Statistics are pure functions over pandas objects; the few query helpers ask ``source`` for tidy
frames. Nothing here decides or draws: ``gate`` decides and ``report`` draws.
"""
