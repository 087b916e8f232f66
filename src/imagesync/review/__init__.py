"""Posting a plan to code review: one sticky comment per project and target set on a GitHub pull
request or a GitLab merge request, and optionally a label saying what the plan would do.

`where` finds the request (flags or CI environment) and its token, `post` keeps the one comment
and the labels, `github` and `gitlab` speak each API, `client` is the HTTP underneath. Only the CLI
imports this package; it reads the rendered plan (`render.markdown`), never the reconciler.
"""
