"""Translating other gateways' configs into tollway.yaml (`tollway migrate`)."""
