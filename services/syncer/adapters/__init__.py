"""What the syncer talks to: its own Mongo collections and Graph."""
