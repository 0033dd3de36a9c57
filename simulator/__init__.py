"""The simulator: pilot households and their disposers, publishing the v1 contract."""
