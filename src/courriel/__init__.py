"""courriel: a self-hosted, all-in-one email platform for online shops."""

__version__ = "0.1.0"
__all__ = ["__version__"]
