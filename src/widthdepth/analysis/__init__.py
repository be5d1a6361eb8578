"""Analysis of a store's traces, never touching a backend: `traces` (grid experiments rebuilt from
the attempts), `aggregators` (the run's answer rules), `estimators` (exact sub-cell averages),
`surface` (every w × d cell from one run), `frontier` (best cell within a budget, per strategy),
`heldout` and `verdict` (who wins, tested on held-out problems), `fits` (scaling fits)."""
