"""Readers and writers for the file formats the field uses (MOTChallenge, AVA, V-ICR)."""
