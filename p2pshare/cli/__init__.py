"""The ``p2pshare`` command line (argument parsing and printing only)."""
