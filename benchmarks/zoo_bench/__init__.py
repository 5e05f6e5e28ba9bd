"""The benchmark runner behind `zoo benchmark`."""
