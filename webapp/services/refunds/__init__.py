"""Refunds (``process-refund``): the customer's refund and the seller's reversal."""
