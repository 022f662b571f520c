"""Interlink: a self-hosted integration hub."""

__version__ = "0.1.0"

__all__ = ["__version__"]
