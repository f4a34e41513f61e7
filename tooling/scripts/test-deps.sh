#!/usr/bin/env bash
# Installs the system packages fw's tests talk to for real: Ceph RADOS Gateway (a real S3 server), and
# a Secret Service (D-Bus and GNOME Keyring, with secret-tool) for @fw/secrets' OS keychain provider.
# Needs root (or sudo) and Debian/Ubuntu apt. Does nothing when they are already there.
set -euo pipefail
PACKAGES=(radosgw ceph-mon ceph-osd ceph-common uuid-runtime curl dbus gnome-keyring libsecret-tools)
missing=()
command -v radosgw >/dev/null 2>&1 || missing+=(radosgw)
command -v ceph-mon >/dev/null 2>&1 || missing+=(ceph-mon)
command -v ceph-osd >/dev/null 2>&1 || missing+=(ceph-osd)
command -v ceph >/dev/null 2>&1 || missing+=(ceph-common)
command -v uuidgen >/dev/null 2>&1 || missing+=(uuid-runtime)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v dbus-daemon >/dev/null 2>&1 || missing+=(dbus)
command -v dbus-run-session >/dev/null 2>&1 || missing+=(dbus)
command -v dbus-send >/dev/null 2>&1 || missing+=(dbus)
command -v gnome-keyring-daemon >/dev/null 2>&1 || missing+=(gnome-keyring)
command -v secret-tool >/dev/null 2>&1 || missing+=(libsecret-tools)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "fw: tests need ${PACKAGES[*]} (Debian package names); install them with your package manager" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "fw: run as root or install sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "fw: installing test dependencies: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
