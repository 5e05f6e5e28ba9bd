"""zoo's local registry of published weights, model cards, and Hub push/pull."""
