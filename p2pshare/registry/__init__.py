"""P2P-DI's registration server (RS): peer list, server, client, and the shared exchange."""
