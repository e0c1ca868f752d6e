#!/usr/bin/env bash
# Copies the charting library the console ships (uPlot, pinned in package.json) from the npm
# package into crates/tally-server/console/vendor/, where the binary embeds it. Run after
# changing its version; the browser tests check the copy is the pinned package's file.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent
vendor=../../crates/tally-server/console/vendor
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css "$vendor/"
cp node_modules/uplot/LICENSE "$vendor/uPlot.LICENSE"
echo "copied uPlot $(node -p 'require("./node_modules/uplot/package.json").version') into $vendor"
