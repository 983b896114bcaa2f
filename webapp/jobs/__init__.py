"""Scheduled jobs, one module per CLI command (``process_transfer.py`` is ``process-transfer``).

``table.py`` lists them; ``runner.py`` wraps every run; ``cli.py`` is the click group;
``scheduler.py`` and ``worker.py`` are the Procfile's long-running processes.
"""
