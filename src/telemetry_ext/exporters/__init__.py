"""Destinations that records are shipped to, one module each."""
