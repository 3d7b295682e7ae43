"""Putting a ``SageSandbox`` on a wire: the shared ``sandbox.wire`` adapters (in-process
``mock_transport``, raw ASGI ``asgi_app``)."""

from __future__ import annotations

from autoinvoice.sandbox.wire import asgi_app, mock_transport

__all__ = ["asgi_app", "mock_transport"]
