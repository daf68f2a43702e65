#!/usr/bin/env bash
# Regenerates the example clips shipped in src/ser/examples/. They are synthetic speech
# (espeak-ng, then sox to 16 kHz mono 16-bit): the project may not ship corpus audio.
# Needs: apt-get install espeak-ng sox
set -euo pipefail
out="$(dirname "$0")/../src/ser/examples"
mkdir -p "$out"
tmp=$(mktemp -d)
espeak-ng -v en-us -s 150 -p 60 -a 150 -w "$tmp/a.wav" "Kids are talking by the door."
sox "$tmp/a.wav" -r 16000 -c 1 -b 16 "$out/speech_example.wav" pad 0.3 0.3 gain -n -3
espeak-ng -v en-us -s 170 -p 70 -a 180 -w "$tmp/b.wav" "I can't believe you did that! Get out of here, right now!"
espeak-ng -v en-us -s 120 -p 30 -a 90 -w "$tmp/c.wav" "Dogs are sitting by the door. It is eleven o'clock."
sox -n -r 22050 -c 1 "$tmp/gap.wav" trim 0 4.5
sox "$tmp/b.wav" "$tmp/gap.wav" "$tmp/c.wav" -r 16000 -c 1 -b 16 "$out/long_example.wav" gain -n -3
rm -r "$tmp"
ls -l "$out"
