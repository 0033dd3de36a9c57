"""Ingest: MQTT consumer, validation, batching, idempotent writer, dead letters, backpressure."""
