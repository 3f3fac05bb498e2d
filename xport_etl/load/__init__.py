"""Load: Parquet staging, the run's next state, merge, graded checks and the atomic publish."""
