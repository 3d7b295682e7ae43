"""The shared HTTP layer every connector uses (connectors never call httpx directly).

INTERFACE ONLY for now: being implemented. See the docstrings for the contract.
"""
