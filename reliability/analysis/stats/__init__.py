"""Statistics: confidence bounds on R, so a redeploy is allowed only when R > 0.98 is proven, not observed.

R is the share of requests that did not end in a 5xx: ``R = successes / n`` with
``successes = requests - errors``. A point estimate of 0.99 from 50 requests proves nothing, so
every decision uses a one-sided lower confidence bound. Failures cluster in incidents, which makes
requests dependent. The gate decides by :func:`bound_r_buckets`: from per-step counts,
:func:`clustering` measures how the 5xx cluster over batches of several lengths. The counts are
then shrunk to *effective* counts ``n / phi``, with phi at its upper confidence limit, so a bursty
history cannot pass on volume alone. Too few independent units means the evidence is insufficient.
:func:`bound_r` takes phi as given (1 for independent requests) and :func:`dispersion` is the plain
Pearson estimate over fixed buckets.

All functions are pure: numbers or tidy frames in, numbers or frozen results out. Counts may be
non-integer (Prometheus ``increase()`` extrapolates, and effective counts are real): the beta
quantiles and the Wilson formula are defined for real arguments.
"""
from __future__ import annotations

from reliability.analysis.stats.bounds import METHODS, interval, lower_bound, upper_bound
from reliability.analysis.stats.clustered import Clustering, bound_r_buckets, bound_r_buckets_frame, clustering
from reliability.analysis.stats.dispersion import dispersion
from reliability.analysis.stats.rbound import RBound, bound_r, bound_r_frame
from reliability.analysis.stats.sample_size import minimum_requests, required_requests

__all__ = [
    "METHODS",
    "Clustering",
    "RBound",
    "bound_r",
    "bound_r_buckets",
    "bound_r_buckets_frame",
    "bound_r_frame",
    "clustering",
    "dispersion",
    "interval",
    "lower_bound",
    "minimum_requests",
    "required_requests",
    "upper_bound",
]
