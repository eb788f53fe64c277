"""`jangin demo`: the whole chain on the sample data, offline, on CPU."""
