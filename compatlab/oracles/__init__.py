"""Oracles: real emulators whose behaviour the reference model must reproduce."""
