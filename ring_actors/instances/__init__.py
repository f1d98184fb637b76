"""Instance actors: one per instance, owning its workload handle."""
