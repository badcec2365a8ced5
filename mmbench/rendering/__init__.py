"""Renderers: how each modality sees the latents (mixing MLPs, compositing, text, scenes)."""
