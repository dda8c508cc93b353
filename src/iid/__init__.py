"""iid: ID-unaware deepfake detection (Implicit Identity Leakage, CVPR 2023)."""

__version__ = "0.1.0"
