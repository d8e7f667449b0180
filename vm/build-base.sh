#!/usr/bin/env bash
# Builds the VM base image offline, for machines that cannot pull from a registry: the equivalent of the
# official node:20-bookworm-slim (Debian bookworm + Node + npm), made from Debian packages with debootstrap
# and this host's Node, then `docker import`ed. vm/Dockerfile builds FROM it with `--build-arg BASE=<tag>`.
#
#   vm/build-base.sh <image-tag>
#
# Needs root, debootstrap, a reachable Debian mirror, and a Node 20 at /usr/bin/node built for Debian
# bookworm (the same release, so its shared libraries match), with its headers (include/node beside it):
# like the official image, the base carries them in /usr/local/include/node, so node-gyp builds native
# modules against them instead of downloading headers from nodejs.org.
set -euo pipefail

tag=${1:?usage: vm/build-base.sh <image-tag>}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(dirname "$(readlink -f "$(command -v npm)")")/..
node_headers=$(dirname "$node_bin")/../include/node

[ "$(id -u)" -eq 0 ] || { echo "build-base: must run as root (debootstrap, docker import)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-base: debootstrap missing: apt-get install -y debootstrap" >&2; exit 1; }
case $("$node_bin" --version) in v20.*) ;; *) echo "build-base: need Node 20 on the host, found $("$node_bin" --version)" >&2; exit 1 ;; esac
[ -f "$node_headers/node_version.h" ] || { echo "build-base: Node headers missing at $node_headers (install Node with its headers)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/ffc-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

echo "build-base: debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 20 "$work/debootstrap.log" >&2; echo "build-base: debootstrap failed" >&2; exit 1; }

echo "build-base: adding Node $("$node_bin" --version), its headers and npm"
install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/include"
cp -a "$(readlink -f "$node_headers")" "$rootfs/usr/local/include/node"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$(readlink -f "$npm_dir")" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# Keep the image small and reproducible: no apt lists or caches, same sources as the official image.
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb

# Like Debian's official slim images: no manuals, docs (except licences) or translations, now or from the
# packages later layers install.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
SLIM
find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/groff/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/linda/* \
  "$rootfs"/usr/share/lintian/overrides/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/man/*

echo "build-base: docker import as $tag"
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' - "$tag" >/dev/null
echo "build-base: done"
