"""The deployed core of cos-matting: imported by every function, runs on Python 3.10."""
