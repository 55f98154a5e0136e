"""Chaos: deploys and teardowns through a real bot process while everything misbehaves."""
