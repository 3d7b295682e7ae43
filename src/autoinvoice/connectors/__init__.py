"""One module per platform plus the shared HTTP layer (``http``) they all use."""
