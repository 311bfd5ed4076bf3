"""Test data that several tests share (plain values, no fixtures)."""
