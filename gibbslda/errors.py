"""Exceptions the library raises beyond ValueError and TypeError."""
from __future__ import annotations


class NotFittedError(ValueError, AttributeError):
    """A fitted attribute or method was used before ``fit``."""


class ModelFileError(ValueError):
    """A model folder is missing, damaged, from an unknown schema, or unsafe to load."""
