"""posdoctor: keeps fleets of CUP-style POS terminals working."""

__version__ = "0.1.0"
