"""Rerun from a date: an admin sets where a date-reading job's next run starts (audited)."""
