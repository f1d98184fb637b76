"""The supervision tree: root supervisor -> deployment actors -> instance actors."""
