#!/usr/bin/env bash
# Installs the system packages the test suite needs (Debian / Raspberry Pi OS / Ubuntu):
# a real MQTT broker for the integration tests, a font for the charts, and Chromium for the
# web app's browser tests (driven by playwright-core; no browser is ever downloaded).
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v systemd-notify >/dev/null 2>&1 || need+=(systemd)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
# The Debian package starts a system broker on port 1883; the tests start their own.
