#!/usr/bin/env bash
# Starts Chromium full-screen on the kiosk's display, pointed at the kiosk screen, once the
# facegate daemon answers /healthz (the camera delivers and the model is loaded).
#   FACEGATE_URL   the screen page (default http://127.0.0.1:9464/)
#   CHROMIUM       the browser (default: chromium, else chromium-browser)
#   WAIT_SECONDS   how long to wait for the daemon before starting anyway (default 180)
set -euo pipefail
url="${FACEGATE_URL:-http://127.0.0.1:9464/}"
wait_s="${WAIT_SECONDS:-180}"
browser="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$browser" ]; then
  echo "kiosk-browser: no chromium found; install it: sudo apt-get install -y chromium" >&2
  exit 1
fi
health="${url%/}/healthz"
for ((i = 0; i < wait_s; i++)); do
  if curl -fsS -o /dev/null --max-time 2 "$health"; then break; fi
  sleep 1
done
# A profile of its own that is thrown away: no restore-session bubble after a power cut.
profile="$(mktemp -d "${XDG_RUNTIME_DIR:-/tmp}/facegate-kiosk.XXXXXX")"
trap 'rm -rf "$profile"' EXIT
exec "$browser" --kiosk --noerrdialogs --disable-infobars --no-first-run --disable-translate \
  --disable-features=TranslateUI --disable-session-crashed-bubble --disable-background-networking \
  --disable-component-update --disable-sync --check-for-update-interval=31536000 \
  --overscroll-history-navigation=0 --user-data-dir="$profile" "$url"
