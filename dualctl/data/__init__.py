"""Datasets: the episode format, its atomic writer, readers and normalisation statistics."""
