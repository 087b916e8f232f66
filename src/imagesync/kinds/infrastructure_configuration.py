"""InfrastructureConfiguration: where builds run; mutable, updated in place."""

from __future__ import annotations

from imagesync.kinds.base import Kind

KIND = Kind(
    name="InfrastructureConfiguration",
    noun="InfrastructureConfiguration",
    arn_type="infrastructure-configuration",
    arn_member="infrastructureConfigurationArn",
    create_arn_member="infrastructureConfigurationArn",
    get_key="infrastructureConfiguration",
    list_key="infrastructureConfigurationSummaryList",
    schema="infrastructure-configuration",
    update_member="infrastructureConfigurationArn",
    # A guess: the API reference gives no default; a live configuration created without it reads true.
    server_defaults=((("terminateInstanceOnFailure",), True),),
    unordered=(("instanceTypes",), ("securityGroupIds",)),
)
