"""The S3 policy a MinIO deployment gives the service's identity (issue 19.4): it writes and reads,
deletes only in its working areas (catalog deltas, failed entries), and never deletes a version,
an original, a record, an audit entry, nor bypasses or changes the bucket's locks."""

import json
from pathlib import Path

POLICY = Path(__file__).resolve().parents[1] / "docker" / "minio-service-policy.json"


def _statements(effect: str) -> list[dict]:
    return [s for s in json.loads(POLICY.read_text())["Statement"] if s["Effect"] == effect]


def test_the_service_policy_denies_deletes_of_evidence_and_lock_bypass():
    denied = {(a, r) for s in _statements("Deny") for a in s["Action"] for r in s["Resource"]}
    for area in ("originals", "records", "pdf", "audit", "reuse", "dossier-owners"):
        assert ("s3:DeleteObject", f"arn:aws:s3:::sohoa/{area}/*") in denied, area
    for action in ("s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutBucketObjectLockConfiguration",
                   "s3:PutBucketVersioning", "s3:DeleteBucket"):
        assert (action, "arn:aws:s3:::sohoa/*") in denied or (action, "arn:aws:s3:::sohoa") in denied, action


def test_the_service_policy_allows_what_the_pipeline_does():
    allowed = {a for s in _statements("Allow") for a in s["Action"]}
    assert {"s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:PutObjectRetention", "s3:GetObjectVersion"} <= allowed
    deletes = [s for s in _statements("Allow") if "s3:DeleteObject" in s["Action"]]
    assert {r for s in deletes for r in s["Resource"]} == {"arn:aws:s3:::sohoa/catalog/*", "arn:aws:s3:::sohoa/failed/*"}
