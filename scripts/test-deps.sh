#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks start as real servers and references:
# redis-server, nginx, OpenSSH's sshd and scp, Ceph's S3 gateway (radosgw over a one-node cluster: a
# ceph-mon, one in-memory ceph-osd, and the ceph and radosgw-admin tools that set it up), the
# notebook seed's Python dependencies, and what Python tarn 0.14 imports, for the interop tests
# (test/interop): Debian has all of it but s3fs, which those tests stand in for with boto3.
set -euo pipefail
packages=(redis-server nginx openssh-server openssh-client radosgw ceph-mon ceph-osd ceph-common python3 python3-blosc python3-psutil procps
  python3-yaml python3-pydantic python3-humanfriendly python3-numpy python3-cloudpickle python3-tqdm
  python3-requests python3-redis python3-boto3 python3-paramiko python3-scp)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "test-deps: all Debian packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
# the packages start their services on install (Ceph's start nothing without a cluster of the
# machine's own); the tests start their own on free ports
for service in redis-server nginx ssh; do
  $sudo service "$service" stop >/dev/null 2>&1 || true
done
echo "test-deps: installed ${missing[*]}"
