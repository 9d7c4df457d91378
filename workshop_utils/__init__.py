"""workshop_utils."""
