"""The errors a person can act on, shared by every layer (bottom layer: imports nothing).

``cli`` and the stage entry points turn both into ``error: <message>`` and exit code 2.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """params.yaml (or a command-line option) is missing or wrong; the message says where."""


class DataError(ValueError):
    """Input data that breaks the contract. The message names the file, column, rows and a fix."""
