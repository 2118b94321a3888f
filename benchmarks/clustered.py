"""False GO and power when failures cluster: the fixed-bucket bound against ``bound_r_buckets``.

Every regime is a Markov-modulated incident process (``reliability.analysis.stats.incidents``)
at a long-run R of exactly 0.98 (false GO: the promise is at most 5 %) and at 0.995 with the
same clustering (power). The grid: mean incident length 1 to 30 minutes, share of time in
incident 2 to 10 %, 1 to 50 requests a second, windows of 6 to 96 hours.
"""
from __future__ import annotations

import itertools
import sys

from benchmarks.common import Table, cli
from reliability.analysis.stats import bound_r_buckets
from reliability.analysis.stats import incidents as inc

LENGTHS = (1, 2, 5, 10, 30)
SHARES = (0.02, 0.05, 0.10)
TRAFFIC = (1, 10, 50)
HOURS = (6, 24, 96)
METHODS = {"fixed 5-min buckets (before)": inc.fixed_buckets, "bound_r_buckets (now)": bound_r_buckets}


def run(quick: bool = False) -> list[Table]:
    promised_n, rare_n, power_n = (200, 100, 50) if quick else (600, 300, 150)
    rows, worst = [], {name: (0.0, None) for name in METHODS}
    for seed, (minutes, share, rps, hours) in enumerate(itertools.product(LENGTHS, SHARES, TRAFFIC, HOURS)):
        regime = inc.Regime(minutes, share, rps, hours)
        promised = regime.incidents >= 20
        windows = promised_n if promised else rare_n
        row = [f"{minutes:g} min", f"{share:.0%}", f"{rps:g}", f"{hours:g} h", round(regime.incidents, 1)]
        for name, decide in METHODS.items():
            false = inc.trial(regime, decide, windows=windows, seed=1000 + seed)
            power = inc.trial(regime, decide, windows=power_n, seed=5000 + seed, r=0.995)
            row += [f"{false.go_rate:.3f} ({false.go_upper:.3f})", f"{power.go_rate:.2f}"]
            if promised and false.go_upper > worst[name][0]:
                worst[name] = (false.go_upper, f"{regime} ({false.go_rate:.3f})")
        seen = false.windows - false.quiet  # the last trial is the new method's false-GO one
        row += ["" if promised else f"{(false.go - false.quiet_go) / seen:.3f}" if seen else "–",
                "" if promised else f"{false.few_units / seen:.2f}" if seen else "–",
                "" if promised else f"{false.quiet_go}/{false.quiet}"]
        rows.append(row)
        print(".", end="", file=sys.stderr, flush=True)
    grid = Table(
        "Clustered failures: false GO at R = 0.98 and GO rate at R = 0.995, per regime and method",
        ["incident length", "share in incident", "req/s", "window", "incidents per window",
         "before: false GO (95 % upper)", "before: GO at 0.995", "now: false GO (95 % upper)", "now: GO at 0.995",
         "now, rare: false GO in windows with an incident",
         "now, rare: refused as too few bursts (share of windows with an incident)",
         "now, rare: GO in windows without an incident"],
        rows,
        notes=(f"{promised_n} windows per false-GO cell where the window holds 20 incidents or more on average "
               f"(the promise), {rare_n} elsewhere; {power_n} per power cell. In brackets: the upper end of the "
               "95 % Wilson interval of the Monte Carlo rate. The last three columns are for the rare regimes "
               "(under 20 incidents), for the new method."))
    summary = Table(
        "Clustered failures: the worst false GO over the regimes that hold 20 incidents or more",
        ["method", "largest 95 % upper false GO", "in regime (measured rate)"],
        [[name, round(upper, 3), where] for name, (upper, where) in worst.items()])
    needed = Table(
        "Hours of history that hold 20 incidents on average (what a window needs to bound R)",
        ["incident length", *[f"{s:.0%} of the time" for s in SHARES]],
        [[f"{m:g} min", *[round(inc.window_for(incident_minutes=m, incident_share=s), 1) for s in SHARES]]
         for m in LENGTHS])
    return [summary, grid, needed]


if __name__ == "__main__":
    sys.exit(cli(run, __doc__))
