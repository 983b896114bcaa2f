"""Payment validation (``validate-pending-debit``): PA01 debits, capture or cancel, and the
charge webhooks that make payment mappings."""
