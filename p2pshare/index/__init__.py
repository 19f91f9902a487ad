"""The P2P-CI central index: the store (``store``) and the asyncio server (``server``)."""
