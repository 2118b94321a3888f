"""Gate layer: the monitoring checks and the decision.

- ``checks``: is the alert that guards the redeploy loaded, unchanged and able to see data;
- ``dashboard``, ``panels``, ``grafana``: the Grafana dashboard as evidence (every panel returns data);
- ``sections``: each analysis for the candidate's window turned into checks;
- ``proof``: runs every section and decides; ``verdict``: GO / NO-GO / INCONCLUSIVE and exit codes.

It reads ``analysis`` results and ``source`` frames; it never draws (``report`` does).
"""
