"""Datasets: file formats, sequences, clips for training, the synthetic benchmark, video reading."""
