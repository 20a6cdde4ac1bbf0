"""The thin HTTP API: starts, signals, updates and queries workflows; reads MongoDB."""
