"""capi_stream/avro"""
