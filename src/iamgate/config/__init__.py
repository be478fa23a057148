"""Gateway configuration: the YAML file, its validation with located diagnostics, snapshots."""
