"""Shipped YAML configs (package data, so `dualctl` works from any directory)."""
