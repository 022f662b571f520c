"""The ``interlink`` command line: thin callers of the same services as the API."""
