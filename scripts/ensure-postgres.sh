#!/usr/bin/env bash
# Postgres for the state-on-Postgres and cluster tests (they start a throwaway server of their own, on 127.0.0.1):
# Debian's package, installed only when no initdb is found, without the "main" cluster the package would otherwise
# create and start. Run by .ci/run and by `pnpm test` (scripts/test.mjs) when Postgres is missing.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "Postgres is not installed and cannot be installed here (needs root and apt-get): apt-get install -y postgresql" >&2
  exit 1
fi
echo "installing Debian's postgresql for the Postgres-backed tests ..."
mkdir -p /etc/postgresql-common
[ -e /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql >/dev/null
