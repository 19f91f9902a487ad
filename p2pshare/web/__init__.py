"""HTTP on the one server runtime: the route table, the dashboard and the metrics."""
