"""The paho overrides are used only on the paho releases they were written for."""

from __future__ import annotations

from ingest import mqttclient


def test_the_installed_paho_is_one_the_overrides_were_read_against() -> None:
    """Fails on a paho release nobody has read the private methods of: read ingest/mqttclient.py
    against it, then add it to WRITTEN_FOR."""
    release = mqttclient.paho_version()
    assert release.startswith(mqttclient.WRITTEN_FOR), release
    assert mqttclient.supported()


def test_another_paho_release_falls_back_to_the_public_client() -> None:
    assert not mqttclient.supported("3.0.0")
    assert not mqttclient.supported("1.6.1")
