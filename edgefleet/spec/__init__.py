"""The application spec: a Compose subset, validated with findings and
normalized into :class:`edgefleet.spec.model.AppSpec`."""
