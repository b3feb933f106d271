"""Reading datasets and turning rows into conversations."""
