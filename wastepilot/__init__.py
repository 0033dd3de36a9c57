"""The top layer: the `wastepilot` command line, composing the services below it."""
