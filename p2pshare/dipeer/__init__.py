"""A P2P-DI peer: RFC index, RFC server, and the handout's download algorithm."""
