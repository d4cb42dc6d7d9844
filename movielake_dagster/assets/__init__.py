"""The lake's assets, one module per layer (each layer is a group in the Dagster UI)."""
