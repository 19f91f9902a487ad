"""A P2P-CI peer: shared folder (``paths``), upload server, index client, whole peer (``node``)."""
