"""consumers/pipeline"""
