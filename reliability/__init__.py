"""love-reliability: prove R > 0.98 from Prometheus history before a redeploy."""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
