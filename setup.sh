#!/usr/bin/env bash
# sohoa set-up, idempotent, for a fresh Debian machine (root, Python 3.11).
#
#   bash setup.sh demo   install everything, digitize samples/ (embedded Dask, S3, signer), export
#   bash setup.sh test   install everything (with test tools), run ruff, mypy and the test suite
#
# It installs Debian packages (Tesseract with Vietnamese, poppler, fonts; Chromium for the
# browser tests), creates .venv/ in the repository root and installs the package into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
mode="${1:-demo}"
shift || true

APT_PACKAGES=(tesseract-ocr tesseract-ocr-vie poppler-utils fonts-liberation2 fonts-dejavu-core fonts-noto-core fonts-noto-mono)
if [[ "$mode" == "test" || "$mode" == "bench" ]]; then
  APT_PACKAGES+=(chromium)
fi
if [[ "$mode" == "bench" ]]; then
  APT_PACKAGES+=(ocrmypdf unpaper)
fi

need_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
if ((${#need_apt[@]})); then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
extras="test"
[[ "$mode" == "bench" ]] && extras="test,bench"
stamp=".venv/.sohoa-installed-$(cat pyproject.toml constraints.txt 2>/dev/null | sha256sum | cut -c1-16)-${extras}"
if [[ ! -f "$stamp" ]]; then
  echo "setup: installing the sohoa package into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[${extras}]"
  rm -f .venv/.sohoa-installed-*
  touch "$stamp"
fi

export OMP_THREAD_LIMIT=1
case "$mode" in
  demo)
    .venv/bin/sohoa digitize samples/scans "$@" || status=$?
    echo
    echo "Records in the embedded warehouse (sohoa export --table; JSON Lines without --table):"
    .venv/bin/sohoa export --table
    exit "${status:-0}"
    ;;
  test)
    # lint and types first (config: pyproject.toml [tool.ruff], [tool.mypy]): a finding fails the run
    echo "== ruff check ."
    .venv/bin/ruff check . || { echo "setup: ruff found problems (above)" >&2; exit 1; }
    echo "== mypy"
    .venv/bin/mypy || { echo "setup: mypy found type errors (above)" >&2; exit 1; }
    echo "== pytest"
    exec .venv/bin/python -m pytest "$@"
    ;;
  bench)
    for b in benchmarks/*.py; do
      [[ "$(basename "$b")" == _* ]] && continue
      echo "== $b"; .venv/bin/python "$b" "$@"
    done
    ;;
  *)
    echo "usage: bash setup.sh demo|test|bench" >&2
    exit 2
    ;;
esac
