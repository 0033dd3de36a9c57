"""The `wastepilot` command groups, one Typer sub-app (or command) per module."""
