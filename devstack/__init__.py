"""The all-in-one embedded run (`capi dev`) and its demo traffic (`capi demo`)."""
