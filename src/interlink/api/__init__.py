"""The REST management API (FastAPI): routes are thin callers of the services."""
