"""The transform function: turns uploaded CSVs announced on the queue into training data."""
