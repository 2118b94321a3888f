"""Files the commands need, shipped in the wheel: read them through :mod:`reliability.paths`.

In a checkout, ``data``, ``monitoring`` and ``notebooks`` here are links to the repository's
folders of those names, so the repository keeps one copy and the wheel carries real files.
"""
