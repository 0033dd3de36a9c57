"""The bottom layer: settings, database access, wire schemas, topics, migrations, logging."""
