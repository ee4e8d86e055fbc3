"""Reports: figures, markdown tables and the report.md of training runs and evaluations."""
