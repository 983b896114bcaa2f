"""Seller onboarding and KYC (``sync-onboarding``, ``monitor-kyc-status``, ``account.updated``)."""
