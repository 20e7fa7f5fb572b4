"""The package version, importable without the package's __init__ side imports."""
__version__ = "0.1.0"
