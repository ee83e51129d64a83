"""The exchange hub: purpose-bound sharing of a city's population, legal-entity and geospatial base data."""

__version__ = "0.1.0"
