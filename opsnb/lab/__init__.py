"""Real services on loopback for tests and the demo lab."""
