"""Self-supervised stereo depth: stereo scenes, warping, the depth metrics and the ``depth``
kind's task. ``depth_metrics(pred, gt, mask=None, median_scaling=False)`` scores any depth or
disparity map."""

from robustvae.depth.metrics import depth_metrics, disparity_to_depth, valid_mask

__all__ = ["depth_metrics", "disparity_to_depth", "valid_mask"]
