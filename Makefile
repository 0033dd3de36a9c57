# The same scripts serve people, CI and the before-stop hook (scripts/README.md).
.PHONY: run test bench lint services-up services-down

run:           ## run the whole pilot locally (installs what it needs)
	scripts/run

test:          ## lint, types and every test against real TimescaleDB and Mosquitto
	scripts/test

bench:         ## benchmarks (print figures and ratios)
	scripts/bootstrap && .venv/bin/wastepilot services up && .venv/bin/python bench/ingest.py

lint:
	.venv/bin/ruff check . && .venv/bin/mypy

services-up:
	scripts/bootstrap && .venv/bin/wastepilot services up

services-down:
	.venv/bin/wastepilot services down
