"""One exception family, so apps can print a clean message instead of a traceback."""


class DynMMError(Exception):
    """Base of every error this SDK raises on purpose."""


class MissingDependency(DynMMError, ImportError):
    """An optional package is not installed; the message names the pip extra or package."""


class ManifestError(DynMMError):
    """A model folder or its manifest.json is invalid (schema, hashes, paths, shapes)."""


class CheckpointError(DynMMError):
    """A checkpoint cannot be read or does not match the model (names the key)."""


class DataError(DynMMError):
    """Bad input data: missing files or streams, wrong sizes, NaN depth (names the file/frame)."""


class BackendError(DynMMError):
    """A backend cannot build, load or run a branch (names the branch or tensor)."""


class BadFrame(DataError):
    """A source could not read one frame; sources yield (not raise) it so the stream goes on.

    The pipeline counts it and, under --on-bad-frame stop, ends the run after the frames
    already read are written.
    """

    def __init__(self, frame_id: int, cause: str):
        super().__init__(f"frame {frame_id}: {cause}")
        self.frame_id = int(frame_id)
        self.cause = cause
