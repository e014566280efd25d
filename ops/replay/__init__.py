"""ops/replay"""
