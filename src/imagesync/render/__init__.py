"""Renderers for the plan model: `text` (Terraform-like, for people) and `json` (the saved plan).

Renderers read only `imagesync.plan_model` and mask sensitive values with `render.mask`.
"""
