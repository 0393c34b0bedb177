"""twostream: reproducible two-stream action recognition experiments."""

import os as _os

# A bad video must give one line on stderr, the project's: FFmpeg's and OpenCV's own
# messages ("moov atom not found", "[ WARN:0] ... VIDEOIO(FFMPEG) ...") are silenced.
# OpenCV reads these when it loads and when it opens its first video, so they are set
# here, before any module imports cv2; a user's own setting wins.
_os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET

__version__ = "0.1.0"
