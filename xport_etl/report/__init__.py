"""Report: report views, the dashboard, the data dictionary and run status."""
