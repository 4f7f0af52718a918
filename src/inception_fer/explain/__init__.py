"""Why a network chose an emotion: Grad-CAM maps of face crops, and overlays of them."""

from __future__ import annotations

from .explainer import FaceExplanation, GradCamExplainer
from .gradcam import grad_cam
from .overlay import heatmap_overlay, photo_overlay

__all__ = ["FaceExplanation", "GradCamExplainer", "grad_cam", "heatmap_overlay", "photo_overlay"]
