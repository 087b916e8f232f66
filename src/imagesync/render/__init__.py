"""Renderers for the plan model: `text` (Terraform-like, for people) and `json` (the saved plan).

Renderers read only `imagesync.changes` and mask sensitive values with `render.mask`.
"""
