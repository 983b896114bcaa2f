"""Who may do what in the console (roles), console users, and the audit trail of their actions."""
