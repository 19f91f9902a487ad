"""The swarm: files of any size shared as verified pieces among many peers (docs/swarm.md)."""
