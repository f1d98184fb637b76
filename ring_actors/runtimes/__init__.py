"""Runtime adapters: one module per engine, all behind `runtimes.base.Runtime`."""
