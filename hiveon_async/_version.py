"""The version of hiveon-async."""

__version__ = "0.1.0"
