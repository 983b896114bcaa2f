"""Mirakl, the outside system: the one client (``client.py``), its transport, the dataclasses it
returns (``types.py``), the field readers behind them, and pure rules about Mirakl orders."""
