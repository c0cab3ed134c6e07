"""nse-hw: hardware-aware Neural Search-space Evolution."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nse-hw")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"
