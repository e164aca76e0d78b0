#!/usr/bin/env bash
# Opens a sweep report in headless Chromium: writes a screenshot and checks, in the DOM the
# browser built, that the plots are there (inline SVGs with drawn paths).
# Usage: scripts/report_screenshot.sh REPORT.html OUT.png [HEIGHT]
# Needs chromium (apt-get install chromium).
set -euo pipefail
report="$(realpath "$1")"; png="$2"; height="${3:-3000}"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome)" \
  || { echo "no chromium found: apt-get install chromium" >&2; exit 2; }
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --run-all-compositor-stages-before-draw)
"$browser" "${flags[@]}" --window-size="1280,$height" --screenshot="$(realpath -m "$png")" \
  "file://$report" 2>/dev/null
dom="$("$browser" "${flags[@]}" --dump-dom "file://$report" 2>/dev/null)"
svgs=$(grep -o "<svg" <<<"$dom" | wc -l)
paths=$(grep -oE "<(path|polyline|line|circle|rect)" <<<"$dom" | wc -l)
echo "$report: $svgs inline SVG plots, $paths drawn shapes in the browser's DOM; screenshot $png ($(stat -c %s "$png") bytes)"
[ "$svgs" -ge 2 ] && [ "$paths" -ge 20 ] && [ -s "$png" ]
