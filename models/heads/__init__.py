"""Task heads: detection (FCOS-style), ReID embeddings, per-track action."""
