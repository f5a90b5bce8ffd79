"""Errors raised at the public boundary of `lorl`, always before compute is spent."""


class LorlError(Exception):
    """Base class of the errors `lorl` raises for bad input."""


class ConfigError(LorlError, ValueError):
    """A configuration value, override or scale is not valid."""


class UnknownOverrideError(ConfigError, KeyError):
    """An override names a config key that does not exist (the message names the closest)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownExperimentError(LorlError, KeyError):
    """No experiment of that name is registered (the message names the closest)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RunDirError(LorlError, ValueError):
    """A run folder is missing, incomplete, or was written by another version of lorl."""
