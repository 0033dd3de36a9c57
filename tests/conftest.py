"""Tests against the real services started by `wastepilot services up`.

A session gets a fresh database (`<name>_test`, migrated); each test gets its own topic prefix
under the broker's test root and truncated tables, so tests do not leak into each other. The
fixtures are plugins in tests/fixtures/; helpers in tests/helpers.py.
"""

from wastepilot.localservices.state import use_local_services

use_local_services()  # the services of `wastepilot services up`, as the CLI finds them

pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.clock",
    "tests.fixtures.database",
    "tests.fixtures.ingest",
    "tests.fixtures.mail",
    "tests.fixtures.notify",
]
