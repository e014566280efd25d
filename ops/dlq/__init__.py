"""ops/dlq"""
