"""Sensors: new raw files in the landing location, failed runs, and (crawl.py) the catalog crawl."""
