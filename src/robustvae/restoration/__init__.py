"""Noise2Noise restoration: corruptions, the photos and their tiles, and the ``restore``
kind's task (``robustvae.restoration.model``)."""
