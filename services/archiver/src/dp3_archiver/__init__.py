"""DP3 archiver service."""
