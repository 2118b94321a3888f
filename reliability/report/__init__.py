"""Report layer: everything that draws or writes documents.

- ``figures``, ``dashboard_image``, ``breaker_plots``, ``explore_figures``: matplotlib figures;
- ``tables``: styled tables for the notebooks;
- ``evidence``: ``evidence.json``, input hashes, versions;
- ``bundle``: runs the proof notebook with papermill into a report folder (and re-renders one);
- ``render``: notebook to HTML (nbconvert) and HTML to PDF (WeasyPrint).

It draws what ``gate`` and ``analysis`` return; nothing below imports it.
"""
