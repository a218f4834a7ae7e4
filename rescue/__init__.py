"""rescue: repair a Windows VM disk that no longer boots, offline, from Linux."""

__version__ = "0.1.0"
