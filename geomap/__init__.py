"""geomap: lithology maps and honest uncertainty from survey rasters and sparse field observations."""

__version__ = "0.1.0"
