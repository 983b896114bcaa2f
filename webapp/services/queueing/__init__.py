"""RQ plumbing shared by services and jobs: queues, the Redis connection, app contexts."""
