"""Audit commands: ``audit verify`` (the hash chain, see ``store/audit.py``) and ``export``
(the invoice register for a period)."""
