"""The host's pipeline steps, one small class each, named verb + noun."""
