"""twostream: reproducible two-stream action recognition experiments."""

__version__ = "0.1.0"
