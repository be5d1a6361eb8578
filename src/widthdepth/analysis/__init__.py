"""Analysis of stored traces: aggregators, the closing table (later: surfaces, frontiers, verdicts)."""
