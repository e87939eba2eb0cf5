"""Simulation: abstract Sysmon events and writers that render them in every supported log format."""
