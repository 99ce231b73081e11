#!/usr/bin/env bash
# A local stand-in for python:3.11-slim, for a machine that reaches Debian's mirror and PyPI but not
# Docker Hub: a minimal Debian bookworm (debootstrap) with its Python 3.11 and venv, imported with
# buildah as localhost/python:3.11-slim. Build the image on it with
#   python docker/build_check.py --base-image localhost/python:3.11-slim
# It differs from the official image in where Python lives (/usr/bin, Debian's 3.11.2, against
# /usr/local/bin and the newest 3.11 there); the Dockerfile needs only `python3 -m venv`.
# The host's extra CA certificates (/usr/local/share/ca-certificates, e.g. a TLS-inspecting proxy's)
# are trusted inside, and pip is pointed at the system bundle, so pip in the build reaches PyPI as the
# host does. Needs root, debootstrap and buildah.
set -euo pipefail
TAG=${1:-localhost/python:3.11-slim}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOTFS=$(mktemp -d /var/tmp/stand-in-base.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT

debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$ROOTFS" "$MIRROR"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
    chroot "$ROOTFS" update-ca-certificates
fi
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin

container=$(buildah from scratch)
mount=$(buildah mount "$container")
tar -C "$ROOTFS" -cf - . | tar -C "$mount" -xf -
buildah umount "$container"
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    --cmd python3 "$container"
buildah commit --rm "$container" "$TAG"
