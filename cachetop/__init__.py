"""cachetop: top for caches."""

__version__ = "0.1.0"
