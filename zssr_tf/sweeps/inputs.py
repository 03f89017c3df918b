"""The images of `zssr train` on many inputs: folders, glob patterns, lists of files, multi-page
TIFF stacks and video files, expanded to one ordered list of image files.

- A folder gives its image files (suffixes `IMAGE_SUFFIXES`, not hidden; other files are
  ignored), not those of its subfolders.
- A glob pattern (`'frames/*.png'`, quoted so that the shell leaves it alone) gives the files it
  matches.
- A TIFF of several pages (a microscope time-lapse, an ImageJ stack) gives one image per page
  (reduced-resolution pages such as thumbnails left out), written as `<stem>_<page>.tif` with the
  page's own samples (bit depth, gray/RGB, alpha) to the frames folder.
- A video file (`VIDEO_SUFFIXES`, read with OpenCV) gives one image per frame, written as 8-bit
  `<stem>_<frame>.png` to the frames folder. Frames and pages count from 0, zero-padded.

Order: "name" (default) sorts every image by file name, numbers by value (`frame_2` before
`frame_10`); "given" keeps the inputs' order, each folder, pattern, stack and video in name or
frame order. Images are named after their file's stem, so two with one stem are refused.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Sequence

from zssr_tf.errors import ZSSRError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
TIFF_SUFFIXES = (".tif", ".tiff")
ORDERS = ("name", "given")


def is_many(inputs: Sequence[str]) -> bool:
    """Whether `inputs` (paths as given on the command line) name more than one image: several
    paths, a folder, a glob pattern that is no existing file, a video, or a TIFF of several pages."""
    if len(inputs) != 1:
        return len(inputs) > 1
    path = Path(inputs[0]).expanduser()
    if path.is_dir() or (glob.has_magic(inputs[0]) and not path.exists()):
        return True
    suffix = path.suffix.lower()
    return suffix in VIDEO_SUFFIXES or (suffix in TIFF_SUFFIXES and path.is_file() and tiff_pages(path) > 1)


def set_name(inputs: Sequence[str]) -> str:
    """A name for the set (its parent run and output folder): a folder's name, a video's or
    stack's stem, the folder of a pattern or of several files (the first input's); `images` when
    none fits a file name."""
    first = inputs[0]
    if glob.has_magic(first) and not Path(first).exists():
        first = str(Path(first).parent).split("*")[0].split("?")[0].split("[")[0] or "images"
    path = Path(first).expanduser().resolve()
    name = path.name if path.is_dir() else path.parent.name if len(inputs) > 1 else path.stem
    return re.sub(r"[^\w.+-]+", "_", name).strip("._") or "images"


def expand_inputs(inputs: Sequence[str], frames_dir: str | Path, order: str = "name") -> list[str]:
    """The image files `inputs` stand for (see the module docstring), as absolute paths in
    `order`; the pages of TIFF stacks and the frames of videos are written to `frames_dir`
    first. Raises ZSSRError for an input that does not exist, a pattern or folder without
    images, a video or stack that cannot be read, an unknown `order`, or two images with one
    stem."""
    if order not in ORDERS:
        raise ZSSRError(f"unknown order {order!r}; use one of {ORDERS}")
    groups = [_expand_one(text, Path(frames_dir)) for text in inputs]
    images = list(dict.fromkeys(path for group in groups for path in group))
    if order == "name":
        images.sort(key=lambda p: (natural_key(Path(p).name), p))
    clashes = clashing_stems(images)
    if clashes:
        raise ZSSRError(f"several inputs are named {clashes} (in different folders or suffixes); runs and outputs are "
                        "named after the file, so rename them or run them separately")
    return images


def clashing_stems(images: Sequence[str]) -> list[str]:
    """The file stems (names without suffix) that more than one of `images` has, sorted: runs and
    outputs are named after the stem, so such images would overwrite each other's."""
    stems = [Path(i).stem for i in images]
    return sorted({s for s in stems if stems.count(s) > 1})


def natural_key(name: str) -> list:
    """Sort key of a file name with its digit runs compared as numbers: frame_2 < frame_10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name)
            if part]


def tiff_pages(path: str | Path) -> int:
    """How many full-resolution pages the TIFF `path` holds (0 when it cannot be read)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            return sum(1 for page in tiff.pages if not page.is_reduced)
    except Exception:  # tifffile raises many types for damaged files; read_image reports them
        return 0


def _expand_one(text: str, frames_dir: Path) -> list[str]:
    path = Path(text).expanduser()
    if path.is_dir():
        found = [p for p in path.iterdir()
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
        if not found:
            raise ZSSRError(f"the folder {text} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        return [image for p in _by_name(found) for image in _expand_file(p, frames_dir)]
    if not path.exists() and glob.has_magic(text):
        found = [Path(m) for m in glob.glob(os.path.expanduser(text), recursive=True) if Path(m).is_file()]
        if not found:
            raise ZSSRError(f"no file matches {text!r} (relative to the working directory {Path.cwd()})")
        return [image for p in _by_name(found) for image in _expand_file(p, frames_dir)]
    if not path.exists():
        raise ZSSRError(f"input {text} not found: give image files, a folder, a quoted glob pattern such as "
                        "'frames/*.png', a multi-page TIFF or a video")
    return _expand_file(path, frames_dir)


def _by_name(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (natural_key(p.name), str(p)))


def _expand_file(path: Path, frames_dir: Path) -> list[str]:
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return _video_frames(path, frames_dir)
    if suffix in TIFF_SUFFIXES and tiff_pages(path) > 1:
        return _tiff_pages(path, frames_dir)
    return [str(path.resolve())]


def _video_frames(path: Path, frames_dir: Path) -> list[str]:
    """Every frame of the video `path` as `<frames_dir>/<stem>_<frame>.png` (8-bit, as decoded)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ZSSRError(f"cannot read the video {path}: OpenCV has no decoder for it; convert it (e.g. ffmpeg -i "
                        f"{path.name} frames/%05d.png) and pass the folder of frames")
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    if not frames:
        raise ZSSRError(f"the video {path} has no frame OpenCV can decode; convert it to frames (ffmpeg -i "
                        f"{path.name} frames/%05d.png) and pass the folder")
    frames_dir.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(frames) - 1)))
    written = []
    for index, frame in enumerate(frames):
        target = frames_dir / f"{path.stem}_{index:0{width}d}.png"
        if not cv2.imwrite(str(target), frame):
            raise ZSSRError(f"cannot write the frame {target}: check that the folder is writable")
        written.append(str(target.resolve()))
    return written


def _tiff_pages(path: Path, frames_dir: Path) -> list[str]:
    """Every full-resolution page of the TIFF `path` as `<frames_dir>/<stem>_<page>.tif`, samples as stored."""
    import numpy as np
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            pages = [page for page in tiff.pages if not page.is_reduced]
            arrays = []
            for page in pages:
                if page.photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB,
                                            tifffile.PHOTOMETRIC.YCBCR):
                    raise ZSSRError(f"the TIFF stack {path} has {page.photometric.name} pages; only gray and RGB "
                                    "pages are supported: convert the stack first")
                samples = page.asarray()
                if samples.ndim == 3 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
                    samples = samples.transpose(1, 2, 0)
                arrays.append(np.ascontiguousarray(samples))
    except ZSSRError:
        raise
    except Exception as error:  # tifffile raises many types for damaged files or missing codecs
        raise ZSSRError(f"cannot read the TIFF stack {path} ({type(error).__name__}: {error}); save it as an "
                        "uncompressed, LZW or Deflate TIFF") from None
    frames_dir.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(len(arrays) - 1)))
    written = []
    for index, samples in enumerate(arrays):
        target = frames_dir / f"{path.stem}_{index:0{width}d}.tif"
        channels = samples.shape[2] if samples.ndim == 3 else 1
        tifffile.imwrite(target, samples, photometric="rgb" if channels >= 3 else "minisblack",
                         extrasamples=["unassalpha"] if channels in (2, 4) else None)
        written.append(str(target.resolve()))
    return written
