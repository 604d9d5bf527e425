"""Pseudonymised user ids: a keyed hash (HMAC-SHA256) in place of each id.

The same key maps the same id to the same pseudonym, so joins across runs still work for
whoever holds the key, and nobody without it can recover or test an id (a plain hash of a
customer number could be reversed by hashing every possible number; a keyed one cannot).
The key is read from the environment and never written into a prepared folder or a model.
"""
from __future__ import annotations

import hashlib
import hmac
import os

import numpy as np

KEY_ENV = "GIBBSLDA_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16


def key_from_env() -> bytes:
    """The pseudonymisation key from ``GIBBSLDA_PSEUDONYM_KEY`` (at least 16 bytes)."""
    key = os.environ.get(KEY_ENV, "")
    if len(key.encode()) < MIN_KEY_BYTES:
        raise ValueError(f"pseudonymising needs a secret key of at least {MIN_KEY_BYTES} "
                         f"characters in {KEY_ENV} (for example from `openssl rand -hex "
                         "32`); keep it outside the data and the model")
    return key.encode()


def pseudonymize(ids, key: bytes) -> np.ndarray:
    """HMAC-SHA256 of each id's text under ``key``, as 32 hex characters (128 bits).

    Parameters
    ----------
    ids : array-like of ids (strings or integers; an id is hashed as ``str(id)``).
    key : bytes, at least 16.

    Returns
    -------
    numpy array of str, one pseudonym per id, in order.
    """
    if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the key must be at least {MIN_KEY_BYTES} bytes")
    values = np.asarray(ids, dtype=object).ravel()
    out = np.empty(values.shape[0], dtype=object)
    for i, value in enumerate(values):
        out[i] = hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:32]
    return out.astype(str)
