#!/usr/bin/env bash
# Makes the container base image the Dockerfile builds on where no image registry is reachable:
# Debian bookworm (debootstrap, minbase) with Node.js MAJOR and npm in /usr/local, the layout of
# the official node:MAJOR-bookworm-slim images. Kept once made; prints the image name.
#
#   .ci/container-base.sh MAJOR
set -euo pipefail
cd "$(dirname "$0")/.."
major=$1
image=localhost/ftn18es-node:$major-bookworm
if podman image exists "$image"; then echo "$image"; exit 0; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rootfs=$tmp/rootfs
# libatomic1: Node.js needs it, minbase lacks it.
debootstrap --variant=minbase --include=libatomic1 bookworm "$rootfs" >"$tmp/debootstrap.log" 2>&1 || {
  tail -n 20 "$tmp/debootstrap.log" >&2
  exit 1
}
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

.ci/node.sh "$major" "$tmp/node"
cp -a "$tmp/node/bin" "$tmp/node/include" "$tmp/node/share" "$rootfs/usr/local/"
npm pack --silent --pack-destination "$tmp" npm@11 >/dev/null
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$tmp"/npm-11.*.tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

tar -C "$rootfs" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' - "$image" >/dev/null 2>"$tmp/import.log" || {
  cat "$tmp/import.log" >&2
  exit 1
}
echo "$image"
