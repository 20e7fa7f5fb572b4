"""Colouring, overlays and HUDs for segmentation results (numpy; cv2 only for text)."""
from dynmm_edge.viz.overlay import colorize, default_palette, draw_hud, overlay, resize_nearest  # noqa: F401
