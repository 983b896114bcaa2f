"""Payment split (``process-transfer``): each seller's share of each Mirakl order, paid once."""
