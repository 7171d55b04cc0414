"""Evaluation videos: rendered frames written as mp4 (imageio)."""

from pathlib import Path

VIDEO_FPS = 15


def save_video(frames, path):
    """Frames (H, W, 3) uint8 -> mp4 at 15 fps."""
    import imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, frames, fps=VIDEO_FPS, macro_block_size=1)
    return path
