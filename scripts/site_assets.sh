#!/usr/bin/env bash
# Fetch the browser-side scripts that the course website serves from itself, never from a CDN:
# the ipywidgets HTML manager (renders the widgets' saved state), RequireJS (which loads it) and
# MathJax 3 (the equations). npm tarballs of pinned versions are unpacked into build/site-assets/.
# Needs npm (a package registry, not the internet at large). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=build/site-assets
packages=("@jupyter-widgets/html-manager@1.0.15" "requirejs@2.3.8" "mathjax@3.2.2")
[ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "${packages[*]}" ] && exit 0
command -v npm >/dev/null || { echo "npm not found: the website needs it once to fetch its scripts" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "${packages[@]}" >/dev/null)
rm -rf "$dest" && mkdir -p "$dest"
for tarball in "$tmp"/*.tgz; do
  name=$(basename "$tarball" .tgz)          # e.g. jupyter-widgets-html-manager-1.0.15
  mkdir -p "$dest/${name%-*}"
  tar -xzf "$tarball" -C "$dest/${name%-*}" --strip-components=1
done
# Keep only what the pages load: the manager's AMD bundle and its fonts, require.js, MathJax's es5 build.
find "$dest/jupyter-widgets-html-manager" -mindepth 1 -maxdepth 1 ! -name dist -exec rm -rf {} +
find "$dest/jupyter-widgets-html-manager/dist" -name "*.map" -delete
find "$dest/requirejs" -mindepth 1 -maxdepth 1 ! -name require.js -exec rm -rf {} +
find "$dest/mathjax" -mindepth 1 -maxdepth 1 ! -name es5 ! -name LICENSE -exec rm -rf {} +
echo "${packages[*]}" > "$dest/.complete"
echo "website scripts in $dest"
