"""The one error type the engine raises for input it cannot process."""


class MattingError(Exception):
    """A job failure the local CI reports in `JobsDetail/Code` and `Message`.

    Codes (CI-like):
      InvalidInput        input missing, empty, or not a readable media file
      InputNotVideo       readable, but no video stream (an image, audio only)
      UnsupportedFormat   a video stream this build cannot decode, or the output cannot be written
      BackgroundNotFound  Combination without a background file, or the file is missing/empty
      InvalidBackground   the background exists but is neither a decodable image nor a video
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self):  # picklable across process pools
        return (type(self), (self.code, self.message))
