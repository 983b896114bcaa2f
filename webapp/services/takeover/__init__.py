"""Taking over a PHP connector 4.1.1 (``import-reference``, docs/switch-over.md)."""
