"""The engine: runs a deployment's phases, compensates, records, and works the queue."""
