"""DP3 dispatcher service."""
