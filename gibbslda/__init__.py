"""gibbslda: collapsed Gibbs sampling for LDA on users x items interactions."""
from importlib.metadata import PackageNotFoundError, version

from gibbslda.corpus import Corpus
from gibbslda.errors import ModelFileError, NotFittedError
from gibbslda.model import LDA, SweepInfo

try:
    __version__ = version("gibbslda")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["LDA", "Corpus", "SweepInfo", "NotFittedError", "ModelFileError", "__version__"]
