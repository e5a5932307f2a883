"""The RecordingSettings mapping's pure parts: spec → plan attributes, live → plan attributes,
and the read-modify-write body."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.providers.genesys.settings import project, settings_attributes, settings_body

LIVE = {
    "maxSimultaneousStreams": 5,
    "regionalRecordingStorageEnabled": False,
    "recordingPlaybackUrlTtl": 60,
    "recordingBatchDownloadUrlTtl": 720,
}


@pytest.mark.parametrize(
    ("spec", "attributes"),
    [
        pytest.param({"region": "eu-west-1"}, {}, id="only-region-manages-nothing"),
        pytest.param({"region": "eu-west-1", "playbackLinkExpiry": "1h"}, {"playbackLinkExpiry": "60m"}, id="hours-become-minutes"),
        pytest.param({"region": "eu-west-1", "stopWhenOnlyExternalParticipants": False}, {"stopWhenOnlyExternalParticipants": False}, id="false-is-managed-not-absent"),
        pytest.param({"region": "eu-west-1", "regionalStorage": None}, {}, id="null-is-not-managed"),
    ],
)  # fmt: skip
def test_spec_to_attributes(spec: dict[str, Any], attributes: dict[str, Any]) -> None:
    assert settings_attributes(spec) == attributes


@pytest.mark.parametrize(
    ("managed", "seen"),
    [
        pytest.param(set(), {}, id="nothing-managed-nothing-reported"),
        pytest.param({"playbackLinkExpiry", "regionalStorage"}, {"playbackLinkExpiry": "60m", "regionalStorage": False}, id="managed-fields-in-manifest-names"),
        pytest.param({"stopWhenOnlyExternalParticipants"}, {}, id="a-field-the-platform-omits-is-absent"),
    ],
)  # fmt: skip
def test_live_to_attributes(managed: set[str], seen: dict[str, Any]) -> None:
    assert project(LIVE, managed) == seen


def test_body_sets_recon_fields_and_keeps_the_rest() -> None:
    body = settings_body({"playbackLinkExpiry": "15m", "stopWhenOnlyExternalParticipants": False}, LIVE)
    assert body == {**LIVE, "recordingPlaybackUrlTtl": 15, "stopRecordingWhenOnlyExternalParticipants": False}
    assert LIVE["recordingPlaybackUrlTtl"] == 60, "the live object is not modified"
