"""ring-actors: a single-host workload orchestrator on trio, compatible with Ring."""

__version__ = "0.1.0"
