"""DP3 scanner service."""
