"""The DuckDB backend: a file on disk (``store``), its sessions (``session``), the
statements behind them (``queries``, ``classify``, ``fingerprints``, ``decisions``), the
analysts' read-only views (``views``) and the numbered schema (``sql/``)."""
