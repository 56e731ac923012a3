"""geomap: lithology maps and honest uncertainty from survey rasters and field observations."""

__version__ = "0.1.0"
