"""Manifests: YAML loading with locations, schema validation, substitution and references.

`load(DIR)` turns a manifest directory into the desired model or raises `ManifestError` with
every problem found, each with its file, line and column.
"""
