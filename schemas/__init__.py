"""The Avro contract, shipped as package data so installed processes can read it."""
