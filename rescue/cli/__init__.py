"""The typer command line. `main.py` builds the app; each command family lives in its own module."""
