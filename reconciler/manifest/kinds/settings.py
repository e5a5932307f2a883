"""Org-wide kinds: RecordingSettings (one per Genesys Cloud org).

A Genesys Cloud org has one set of recording settings; the ones that matter to compliance
are where recordings are stored, whether recording stops when only external parties are
left on a call, and how long the playback and bulk-download links that the platform hands
out stay valid. Every field is optional: a field the manifest leaves out is not managed and
stays as the admin console has it.

Called by: the kind registry (imported by reconciler.manifest.kinds).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StrictBool

from reconciler.durations import Duration, DurationField
from reconciler.manifest.kinds.base import GenesysRegion, Spec, register_kind

PLAYBACK_LINK_MINUTES = (2, 60)
"""Genesys Cloud's bounds for recordingPlaybackUrlTtl, in minutes."""
DOWNLOAD_LINK_MINUTES = (2, 720)
"""Genesys Cloud's bounds for recordingBatchDownloadUrlTtl, in minutes."""


def _minutes_between(low: int, high: int) -> AfterValidator:
    def check(value: Duration) -> Duration:
        milliseconds = value.milliseconds
        if milliseconds % 60_000:
            raise ValueError(f"{value} is not a whole number of minutes; write e.g. 15m or 1h")
        minutes = milliseconds // 60_000
        if not low <= minutes <= high:
            raise ValueError(f"{value} is outside what Genesys Cloud allows: {low}m to {high}m")
        return value

    return AfterValidator(check)


@register_kind(
    "RecordingSettings",
    summary="The org-wide recording settings of one Genesys Cloud org: storage region, external-only calls, link lifetimes.",
)
class RecordingSettingsSpec(Spec):
    region: GenesysRegion
    """The Genesys Cloud region of the org these settings belong to (one RecordingSettings per org)."""
    regionalStorage: StrictBool | None = None
    """Store each recording in the region that handled the call's media (keeps EU clients' calls in the EU)."""
    stopWhenOnlyExternalParticipants: StrictBool | None = None
    """Stop recording once only external parties remain on a call; keep false on trading desks."""
    playbackLinkExpiry: Annotated[DurationField, _minutes_between(*PLAYBACK_LINK_MINUTES)] | None = None
    """How long a recording playback link stays valid (2m to 60m); shorter limits who can replay a call."""
    downloadLinkExpiry: Annotated[DurationField, _minutes_between(*DOWNLOAD_LINK_MINUTES)] | None = None
    """How long a bulk recording download link stays valid (2m to 720m)."""
