"""DP3 portal service."""
