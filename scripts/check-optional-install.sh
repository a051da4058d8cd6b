#!/usr/bin/env bash
# Shows that `npm install` succeeds when @tensorflow/tfjs-node (an optional dependency: its
# install script downloads libtensorflow) cannot be installed, e.g. without internet access,
# and says whether it ended up usable. Installs, in a temporary folder, a project with this
# repository's TF.js dependency and tfjs-node as optional, with the repository's .npmrc.
#
#   scripts/check-optional-install.sh        (needs the npm registry; a few minutes)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
node -e '
  const p = require(process.argv[1]);
  const out = {
    name: "facegate-optional-install-check", version: "0.0.0", private: true,
    dependencies: { "@tensorflow/tfjs": p.dependencies["@tensorflow/tfjs"] },
    optionalDependencies: { "@tensorflow/tfjs-node": p.optionalDependencies["@tensorflow/tfjs-node"] },
  };
  require("fs").writeFileSync(process.argv[2], JSON.stringify(out, null, 2));
' "$here/package.json" "$tmp/package.json"
cp "$here/.npmrc" "$tmp/.npmrc"
cd "$tmp"
# Let tfjs-node's install script run (newer npm versions ask before running install scripts).
if npm install --foreground-scripts --allow-scripts=@tensorflow/tfjs-node >install.log 2>&1 ||
  npm install --foreground-scripts >install.log 2>&1; then
  echo "npm install: succeeded"
else
  echo "npm install: FAILED (see below)"
  tail -30 install.log
  exit 1
fi
if node -e 'require("@tensorflow/tfjs-node")' >/dev/null 2>&1; then
  echo "@tensorflow/tfjs-node: installed and loads (training uses the native backend)"
else
  echo "@tensorflow/tfjs-node: not usable here (training falls back to the wasm backend)"
  grep -iE 'tfjs-node|libtensorflow|optional' install.log | head -5 || true
fi
