"""Deploy-time tooling for cos-matting: the typed serverless.yml model, packaging, the CAM policy.

Nothing here is deployed; the functions ship `functions/<name>/index.py` + `shared/`
and a layer with the third-party dependencies (see deploy/package.py).
"""
