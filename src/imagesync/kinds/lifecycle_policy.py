"""LifecyclePolicy: rules that deprecate and delete old images; mutable."""

from __future__ import annotations

from imagesync.kinds.base import Kind

KIND = Kind(
    name="LifecyclePolicy",
    noun="LifecyclePolicy",
    arn_type="lifecycle-policy",
    arn_member="lifecyclePolicyArn",
    create_arn_member="lifecyclePolicyArn",
    get_key="lifecyclePolicy",
    list_key="lifecyclePolicySummaryList",
    schema="lifecycle-policy",
    versioned=False,
    update_member="lifecyclePolicyArn",
)
