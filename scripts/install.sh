#!/usr/bin/env bash
# Installs facegate as a systemd service on Raspberry Pi OS (64-bit) or a Jetson
# (Ubuntu / L4T, arm64), and on Debian/Ubuntu x86-64.
#
#   sudo scripts/install.sh [--from DIR|TARBALL] [--model DIR] [--config FILE] [--no-start]
#
# What it does: checks the CPU (onnxruntime-node ships linux arm64 and x64 only), installs
# Node.js 20+ when missing, camera tools (fswebcam, ffmpeg), the package into
# /opt/facegate (production dependencies only), a system user "facegate" in group
# "video", /etc/facegate/config.json (kept when present), the model into
# /var/lib/facegate/models/current, and systemd/facegate.service. Idempotent: run it again
# to upgrade.
set -euo pipefail

FROM="$(cd "$(dirname "$0")/.." && pwd)"
MODEL=""
CONFIG=""
START=1
while [ $# -gt 0 ]; do
  case "$1" in
    --from) FROM="$2"; shift 2 ;;
    --model) MODEL="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --no-start) START=0; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

PREFIX=/opt/facegate
STATE=/var/lib/facegate
ETC=/etc/facegate
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 ...)"
command -v systemctl >/dev/null || die "systemd is required"

arch="$(uname -m)"
case "$arch" in
  aarch64|arm64|x86_64) ;;
  armv7l|armv6l) die "32-bit ARM ($arch): onnxruntime-node has no 32-bit ARM build. Install the 64-bit Raspberry Pi OS." ;;
  *) die "unsupported CPU $arch (need aarch64 or x86_64)" ;;
esac
if [ -r /etc/nv_tegra_release ]; then say "Jetson detected ($(head -c 60 /etc/nv_tegra_release))"; fi
if grep -qi 'raspberry pi' /proc/device-tree/model 2>/dev/null; then say "Raspberry Pi detected ($(tr -d '\0' </proc/device-tree/model))"; fi

export DEBIAN_FRONTEND=noninteractive
say "system packages: camera tools"
apt-get update -qq
apt-get install -y -qq --no-install-recommends ca-certificates curl fswebcam ffmpeg v4l-utils >/dev/null

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 20 ]; then
  say "Node.js 20 (NodeSource)"
  apt-get install -y -qq nodejs >/dev/null 2>&1 || true
  if [ "$(node_major)" -lt 20 ]; then
    curl -fsSL https://deb.nodesource.com/setup_20.x | bash - >/dev/null
    apt-get install -y -qq nodejs >/dev/null
  fi
fi
[ "$(node_major)" -ge 20 ] || die "Node.js 20 or newer is required (found $(node --version 2>/dev/null || echo none))"

say "user facegate (group video for /dev/video*, group gpio for /dev/gpiochip*)"
if ! id facegate >/dev/null 2>&1; then
  useradd --system --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin facegate
fi
# Raspberry Pi OS has a gpio group owning /dev/gpiochip*; elsewhere create it, so that the
# unit's SupplementaryGroups=video gpio resolves (see docs/door-access.md for the udev rule).
getent group gpio >/dev/null || groupadd --system gpio
usermod -a -G video,gpio facegate

say "package into $PREFIX"
mkdir -p "$PREFIX"
if [ -f "$FROM" ]; then
  tar -xzf "$FROM" -C "$PREFIX" --strip-components=1   # an `npm pack` tarball
else
  [ -f "$FROM/dist/src/cli.js" ] || die "$FROM has no dist/: run npm run build there first"
  for item in dist/src config systemd scripts docs ecosystem.config.cjs package.json package-lock.json; do
    [ -e "$FROM/$item" ] || continue
    mkdir -p "$PREFIX/$(dirname "$item")"
    rm -rf "${PREFIX:?}/$item"
    cp -a "$FROM/$item" "$PREFIX/$item"
  done
fi
# Production dependencies only. --ignore-scripts: the package's own `prepare` (tsc) needs dev
# tools, and onnxruntime-node's install script only fetches CUDA files we do not use (its CPU
# binaries for linux arm64/x64 are inside the package); sharp uses prebuilt @img packages.
(cd "$PREFIX" && ONNXRUNTIME_NODE_INSTALL=skip npm install --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)

say "built-in models (BlazeFace, faceres) converted to ONNX once, here, so the kiosk only loads them"
install -d -m 0755 /var/cache/facegate   # the unit's CacheDirectory= (model.detectorCacheDir)
node "$PREFIX/dist/src/cli.js" models prepare --cache-dir /var/cache/facegate

say "state, config and model"
install -d -o facegate -g facegate -m 0750 "$STATE" "$STATE/models"
install -d -m 0755 "$ETC"
if [ -n "$CONFIG" ]; then
  install -m 0640 -g facegate "$CONFIG" "$ETC/config.json"
elif [ ! -f "$ETC/config.json" ]; then
  cat > "$ETC/config.json" <<JSON
{
  "camera": { "type": "ffmpeg", "ffmpeg": { "input": "/dev/video0" } },
  "model": { "dir": "$STATE/models/current" },
  "mqtt": { "url": "", "kioskId": "$(hostname -s | tr -c 'A-Za-z0-9_-\n' '_')" }
}
JSON
  chgrp facegate "$ETC/config.json"; chmod 0640 "$ETC/config.json"
  echo "   wrote $ETC/config.json: set mqtt.url to your broker (empty = embedded broker on 127.0.0.1:1883)"
fi
[ -f "$ETC/env" ] || { install -m 0600 /dev/null "$ETC/env"; echo "# FACEGATE__MQTT__PASSWORD=..." > "$ETC/env"; }
if [ -n "$MODEL" ]; then
  [ -f "$MODEL/manifest.json" ] || die "$MODEL is not a model directory (no manifest.json)"
  rm -rf "$STATE/models/current.new"
  cp -a "$MODEL" "$STATE/models/current.new"
  rm -rf "$STATE/models/current"
  mv "$STATE/models/current.new" "$STATE/models/current"
  chown -R facegate:facegate "$STATE/models"
fi

say "systemd unit"
install -m 0644 "$PREFIX/systemd/facegate.service" /etc/systemd/system/facegate.service
systemctl daemon-reload
systemctl enable facegate.service >/dev/null
if [ "$START" -eq 1 ]; then
  if [ -f "$STATE/models/current/manifest.json" ]; then
    systemctl restart facegate.service || true
    sleep 3
    systemctl --no-pager --lines=5 status facegate.service || true
  else
    echo "   not started: no model in $STATE/models/current yet (train one with facegate train, then: sudo $0 --model DIR)"
  fi
fi
cat <<EOF2

facegate installed.
  config:  $ETC/config.json   (facegate config --print-schema lists every key)
  secrets: $ETC/env           (FACEGATE__MQTT__PASSWORD=...)
  model:   $STATE/models/current   (copy one with: sudo $0 --model DIR --no-start)
  logs:    journalctl -u facegate -f
  health:  curl http://127.0.0.1:9464/healthz
EOF2
