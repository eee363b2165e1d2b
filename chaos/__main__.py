"""``python -m chaos run NAME``: the same as ``cerebrum chaos run NAME``."""

from chaos.cli import chaos_app

chaos_app()
