#!/usr/bin/env bash
# Write docker/s3.json (SeaweedFS S3 identities) from docker/.env: credentials required, no anonymous access.
set -euo pipefail
cd "$(dirname "$0")"
set -a; source .env; set +a
umask 077
cat > s3.json <<JSON
{"identities": [{"name": "sohoa",
  "credentials": [{"accessKey": "${SOHOA_S3_ACCESS_KEY}", "secretKey": "${SOHOA_S3_SECRET_KEY}"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
echo "wrote docker/s3.json"
