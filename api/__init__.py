"""The HTTP API (FastAPI): usage for analysts, bid support for officers, health probes."""
