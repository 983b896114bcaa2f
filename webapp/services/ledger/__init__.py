"""What every money workflow shares: the state machines and the one status writer, claim and
record of money jobs, idempotency keys, minor units, leases, checkpoints, and the transfer money
job that split, refunds and payouts all use."""
