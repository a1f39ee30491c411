"""The PostgreSQL backend (SPEC §14): ``PostgresStore`` and its session."""
