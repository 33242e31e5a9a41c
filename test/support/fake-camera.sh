#!/bin/sh
# A stand-in for rpicam-still / ffmpeg, which need camera hardware: writes the next photo of a folder to
# stdout on every run, like a camera pointed at a changing scene. FAIL_FIRST=n makes the first n runs
# fail the way a camera that is not plugged in yet does. FAKE_CAMERA_UNIQUE=1 appends the frame number
# after the image's end, so every frame has its own content hash, like a real scene (decoders ignore it).
# usage: fake-camera.sh PHOTO_DIR STATE_FILE
set -eu
dir="$1"
state="$2"
n=$(cat "$state" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$state"
if [ "$n" -le "${FAIL_FIRST:-0}" ]; then
  echo "ERROR: no cameras available" >&2
  exit 1
fi
photos=$(ls "$dir" | grep -Ei '\.(jpe?g|png|bmp|webp)$' | sort)
count=$(echo "$photos" | wc -l)
file=$(echo "$photos" | sed -n "$(( (n - 1) % count + 1 ))p")
cat "$dir/$file"
if [ "${FAKE_CAMERA_UNIQUE:-0}" = 1 ]; then printf 'frame %d' "$n"; fi
