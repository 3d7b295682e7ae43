"""OAuth2 connections of tenants to their ledger platforms: tokens encrypted at rest
(``crypto``), the ``TokenSource`` connectors use (``tokens.DbTokenSource``), the consent flow
(``connect``) and each connection's health (``status``).

This package sits between ``connectors`` (which never touches the database) and ``store``:
``connectors.oauth`` holds the platforms' OAuth facts, ``connectors.oauth_client`` the HTTP
flows, and this package keeps what they return."""
