"""The release number, in the ground layer so that any module can name it (the conversion cache
records it) without importing the package's API."""

__version__ = "0.1.0"
