"""DistributionConfiguration: where images go; mutable, updated in place."""

from __future__ import annotations

from imagesync.kinds.base import Kind

KIND = Kind(
    name="DistributionConfiguration",
    noun="DistributionConfiguration",
    arn_type="distribution-configuration",
    arn_member="distributionConfigurationArn",
    create_arn_member="distributionConfigurationArn",
    get_key="distributionConfiguration",
    list_key="distributionConfigurationSummaryList",
    schema="distribution-configuration",
    update_member="distributionConfigurationArn",
    unordered=(("distributions", "*", "amiDistributionConfiguration", "targetAccountIds"),),
)
