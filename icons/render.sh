#!/bin/sh
# Regenerate the protocol icon PNGs from their SVG sources.
#
#   icons/16/wabiz.png  <- icons/wabiz-16.svg  (hand-tuned on the 16 px grid)
#   icons/22/wabiz.png  <- icons/wabiz-22.svg  (hand-tuned on the 22 px grid)
#   icons/48/wabiz.png  <- icons/wabiz.svg     (master design, 48 px grid)
#
# The PNGs are committed; this script is NOT run by the meson build. Run it by
# hand after editing an SVG, look at the results, and commit SVG and PNG
# together. Needs rsvg-convert (Debian: apt-get install librsvg2-bin); if
# optipng is installed the PNGs are also losslessly recompressed.
#
# Usage: sh icons/render.sh        (from any directory)
set -eu

cd "$(dirname "$0")"

command -v rsvg-convert >/dev/null 2>&1 || {
	echo "render.sh: rsvg-convert not found (apt-get install librsvg2-bin)" >&2
	exit 1
}

render() { # size source.svg
	mkdir -p "$1"
	rsvg-convert --width "$1" --height "$1" --keep-aspect-ratio \
		--output "$1/wabiz.png" "$2"
	echo "wrote icons/$1/wabiz.png from icons/$2"
}

render 16 wabiz-16.svg
render 22 wabiz-22.svg
render 48 wabiz.svg

if command -v optipng >/dev/null 2>&1; then
	optipng -quiet -o7 -strip all 16/wabiz.png 22/wabiz.png 48/wabiz.png
fi
