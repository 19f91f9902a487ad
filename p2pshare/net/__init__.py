"""The thin asyncio layer shared by every server and client: sockets meet codecs here."""
