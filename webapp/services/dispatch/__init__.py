"""Running money jobs (inline or queued) and the operator's decisions on failed rows."""
