"""The cos-matting command line."""
