"""Region tables: AWS regions (archive buckets) and Genesys Cloud regions (the org's home),
each with the data-protection jurisdiction it sits in.

Residency rules (`reconciler.policy`) compare a queue's `clientRegion` with these
jurisdictions. eu-west-2 (London) is UK, not EU. The lists are as published by the vendors
in 2026; adding a region is a one-line change here.

Called by: reconciler.manifest.kinds (validation), reconciler.policy (residency rules).
"""

from __future__ import annotations

AWS_REGION_JURISDICTION: dict[str, str] = {
    "us-east-1": "US", "us-east-2": "US", "us-west-1": "US", "us-west-2": "US",
    "us-gov-east-1": "US", "us-gov-west-1": "US",
    "ca-central-1": "CA", "ca-west-1": "CA", "mx-central-1": "LATAM", "sa-east-1": "LATAM",
    "eu-west-1": "EU", "eu-west-3": "EU", "eu-central-1": "EU", "eu-central-2": "CH",
    "eu-north-1": "EU", "eu-south-1": "EU", "eu-south-2": "EU", "eusc-de-east-1": "EU",
    "eu-west-2": "UK",
    "af-south-1": "MEA", "il-central-1": "MEA", "me-south-1": "MEA", "me-central-1": "MEA",
    "ap-east-1": "APAC", "ap-east-2": "APAC", "ap-south-1": "APAC", "ap-south-2": "APAC",
    "ap-southeast-1": "APAC", "ap-southeast-2": "APAC", "ap-southeast-3": "APAC",
    "ap-southeast-4": "APAC", "ap-southeast-5": "APAC", "ap-southeast-6": "APAC",
    "ap-southeast-7": "APAC", "ap-northeast-1": "APAC", "ap-northeast-2": "APAC",
    "ap-northeast-3": "APAC",
    "cn-north-1": "CN", "cn-northwest-1": "CN",
}  # fmt: skip

GENESYS_REGION_JURISDICTION: dict[str, str] = {
    "us-east-1": "US", "us-east-2": "US", "us-west-2": "US",
    "ca-central-1": "CA", "sa-east-1": "LATAM",
    "eu-west-1": "EU", "eu-central-1": "EU", "eu-central-2": "CH", "eu-west-2": "UK",
    "me-central-1": "MEA",
    "ap-south-1": "APAC", "ap-southeast-2": "APAC", "ap-northeast-1": "APAC",
    "ap-northeast-2": "APAC", "ap-northeast-3": "APAC",
}  # fmt: skip

CLIENT_REGIONS = ("EU", "UK", "US", "CH", "CA", "APAC", "LATAM", "MEA", "OTHER")

# Where a client region's recordings may live. UK GDPR recognises the EU as adequate, so UK
# clients may be recorded in the EU; the reverse needs the UK adequacy decision, which a bank's
# DPO usually does not want to rely on for trading records, so EU clients stay in the EU.
ALLOWED_JURISDICTIONS: dict[str, frozenset[str]] = {
    "EU": frozenset({"EU"}),
    "UK": frozenset({"UK", "EU"}),
    "CH": frozenset({"CH", "EU"}),
}
