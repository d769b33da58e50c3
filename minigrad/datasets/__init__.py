"""Package data for minigrad.data: the bundled digits set (see README.md here for its source)."""
