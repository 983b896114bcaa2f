"""Seller settlement (``process-payout``): invoice transfers and the payout, ``payout.failed``."""
