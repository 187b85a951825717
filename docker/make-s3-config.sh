#!/usr/bin/env bash
# Write docker/s3.json (SeaweedFS S3 identities) from docker/.env: credentials required, no anonymous access.
set -euo pipefail
cd "$(dirname "$0")"
set -a; source .env; set +a
umask 077
# Deletion is prevented by COMPLIANCE-mode Object Lock retention on originals, record versions and
# audit entries, which SeaweedFS refuses to every identity, Admin included. SeaweedFS checks
# DeleteObject against the same "Write" action as PutObject, so no identity can write without
# being able to delete unretained objects. Without "Admin" the service could not create its
# bucket on first start (pipeline.services), so the single identity keeps it for now.
cat > s3.json <<JSON
{"identities": [{"name": "sohoa",
  "credentials": [{"accessKey": "${SOHOA_S3_ACCESS_KEY}", "secretKey": "${SOHOA_S3_SECRET_KEY}"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
echo "wrote docker/s3.json"
