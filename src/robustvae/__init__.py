"""robustvae: autoencoders and image restoration with robust reconstruction losses."""

__version__ = "0.1.0"
