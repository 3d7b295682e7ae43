"""Pure data and rules. Imports only the standard library and does no I/O."""
