"""autoinvoice: a finished compressor service job becomes a sent, tracked invoice."""

__version__ = "0.1.0"
