"""gibbslda: collapsed Gibbs sampling for LDA on users x items interactions.

Public names are imported on first use, so ``import gibbslda`` (and the command line's
``--help``) does not pay for numba, polars or pandas until they are needed.
"""
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gibbslda")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_PUBLIC = {
    "LDA": "gibbslda.model",
    "SweepInfo": "gibbslda.model",
    "Corpus": "gibbslda.corpus",
    "NotFittedError": "gibbslda.errors",
    "ModelFileError": "gibbslda.errors",
    "DistributedLDA": "gibbslda.distributed",
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gibbslda' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
