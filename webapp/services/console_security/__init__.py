"""Console sign-in security: server-side sessions and the failed-login throttle."""
