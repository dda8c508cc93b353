"""Reports over finished runs: an experiment's table, and the reproduction scorecard over many sweeps."""
