#!/usr/bin/env bash
# Write docker/s3.json (SeaweedFS S3 identities) from docker/.env: credentials required, no anonymous access.
set -euo pipefail
cd "$(dirname "$0")"
set -a; source .env; set +a
umask 077
# Two identities. "sohoa-setup" (Admin; SOHOA_S3_SETUP_*) is used only by the one-shot s3-setup
# step of compose.yaml to create the bucket with Object Lock and versioning. "sohoa" (SOHOA_S3_*),
# the one the API, driver and workers use, has no Admin: it cannot create or delete buckets, change
# versioning or the Object Lock configuration, or bypass governance retention. Deletion of
# originals, record versions and audit entries is prevented by their COMPLIANCE-mode retention,
# which SeaweedFS refuses to lift for every identity, Admin included. SeaweedFS checks DeleteObject
# against the same "Write" action as PutObject, so the service can still delete unretained objects
# (page images, PDFs, indexes, catalog deltas).
: "${SOHOA_S3_SETUP_ACCESS_KEY:?set in docker/.env}" "${SOHOA_S3_SETUP_SECRET_KEY:?set in docker/.env}"
if [ "${SOHOA_S3_SETUP_ACCESS_KEY}" = "${SOHOA_S3_ACCESS_KEY}" ]; then
  echo "SOHOA_S3_SETUP_ACCESS_KEY must differ from SOHOA_S3_ACCESS_KEY" >&2; exit 1
fi
cat > s3.json <<JSON
{"identities": [
 {"name": "sohoa-setup",
  "credentials": [{"accessKey": "${SOHOA_S3_SETUP_ACCESS_KEY}", "secretKey": "${SOHOA_S3_SETUP_SECRET_KEY}"}],
  "actions": ["Admin"]},
 {"name": "sohoa",
  "credentials": [{"accessKey": "${SOHOA_S3_ACCESS_KEY}", "secretKey": "${SOHOA_S3_SECRET_KEY}"}],
  "actions": ["Read", "Write", "List", "Tagging", "PutObjectRetention", "GetObjectRetention",
              "GetBucketObjectLockConfiguration"]}]}
JSON
echo "wrote docker/s3.json"
