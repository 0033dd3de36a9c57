"""The local services of a development machine: PostgreSQL + TimescaleDB and Mosquitto, installed
and started by `wastepilot services up`; state.py is the only owner of `.wastepilot/local.json`."""
