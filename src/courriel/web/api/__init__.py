"""The versioned JSON APIs (``/api/v1``)."""
