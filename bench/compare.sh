#!/usr/bin/env bash
# Rostrum and LiveKit side by side, on this machine, under the same load: one
# publisher looping one real VP8 file (libvpx, 1280×720, 30 fps, 1.4 Mbit/s,
# a keyframe every second, RTP packets of at most 1,200 bytes, no audio) and
# N subscribers, the server pinned to one CPU and the load generator to
# another. See bench/README.md.
#
#   LIVEKIT_SERVER=/path/to/livekit-server bench/compare.sh
#
# Settings (environment): SUBSCRIBERS ("100 200 300"), RUNS per point (1),
# DURATION (15s), WARMUP (5s), JOIN_RATE (20), SERVER_CPUS (0), CPUS (1),
# OUT (a new directory under /tmp), VIDEO (make one with ffmpeg), LIVEKIT_ARGS
# and ROSTRUM_ARGS (more flags for each side, e.g. --single-peer-connection).
set -euo pipefail
cd "$(dirname "$0")/.."

SUBSCRIBERS=${SUBSCRIBERS:-100 200 300}
RUNS=${RUNS:-1}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-5s}
JOIN_RATE=${JOIN_RATE:-20}
SERVER_CPUS=${SERVER_CPUS:-0}
CPUS=${CPUS:-1}
OUT=${OUT:-$(mktemp -d /tmp/rostrum-vs-livekit.XXXXXX)}
LIVEKIT_SERVER=${LIVEKIT_SERVER:-$(command -v livekit-server || true)}
read -r -a livekit_args <<<"${LIVEKIT_ARGS:-}"
read -r -a rostrum_args <<<"${ROSTRUM_ARGS:-}"

if [ -z "$LIVEKIT_SERVER" ] || [ ! -x "$LIVEKIT_SERVER" ]; then
  cat >&2 <<'MSG'
compare.sh: set LIVEKIT_SERVER to a livekit-server binary. To build v1.13.5 (a few minutes):
  GOFLAGS= GOBIN=$HOME/livekit go install github.com/livekit/livekit-server/cmd/server@v1.13.5
  LIVEKIT_SERVER=$HOME/livekit/server bench/compare.sh
MSG
  exit 2
fi
command -v ffmpeg >/dev/null || { echo "compare.sh: ffmpeg is needed to make the video (apt-get install ffmpeg)" >&2; exit 2; }
command -v taskset >/dev/null || { echo "compare.sh: taskset is needed to pin the servers (util-linux)" >&2; exit 2; }

mkdir -p "$OUT/bin"
echo "== building rostrum and livekit-bench into $OUT/bin"
go build -o "$OUT/bin/rostrum" ./cmd/rostrum
(cd bench/livekit && GOFLAGS= go build -o "$OUT/bin/livekit-bench" .)

VIDEO=${VIDEO:-$OUT/video.ivf}
if [ ! -s "$VIDEO" ]; then
  echo "== making $VIDEO"
  # The arguments of loadtest.FFmpegVP8Args, which --video-file auto uses.
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -t 10 \
    -c:v libvpx -b:v 1400000 -minrate 1400000 -maxrate 1400000 -g 30 -keyint_min 30 \
    -deadline realtime -cpu-used 8 -f ivf "$VIDEO"
fi

common=(--video-file "$VIDEO" --server-cpus "$SERVER_CPUS" --cpus "$CPUS"
        --duration "$DURATION" --warmup "$WARMUP" --join-rate "$JOIN_RATE")
for n in $SUBSCRIBERS; do
  for run in $(seq 1 "$RUNS"); do
    # One after the other at each point, so that a change in the machine's
    # load falls on both.
    echo "== N=$n run $run: Rostrum"
    # --pace 0: livekit-bench's publisher writes each frame's packets back to
    # back, so Rostrum's must too for the two servers to get the same load.
    "$OUT/bin/rostrum" loadtest "${common[@]}" --no-audio --pace 0 --subscribers "$n" ${rostrum_args[@]+"${rostrum_args[@]}"} \
      --json "$OUT/rostrum-$n-$run.json" >"$OUT/rostrum-$n-$run.txt" || echo "   (exit $?: see $OUT/rostrum-$n-$run.txt)"
    echo "== N=$n run $run: LiveKit"
    "$OUT/bin/livekit-bench" --server "$LIVEKIT_SERVER" "${common[@]}" --subscribers "$n" \
      --server-log "$OUT/livekit-server.log" ${livekit_args[@]+"${livekit_args[@]}"} \
      --json "$OUT/livekit-$n-$run.json" >"$OUT/livekit-$n-$run.txt" || echo "   (exit $?: see $OUT/livekit-$n-$run.txt)"
  done
done

echo
echo "== Rostrum and LiveKit side by side (full reports in $OUT)"
"$OUT/bin/livekit-bench" table "$OUT"/rostrum-*.json "$OUT"/livekit-*.json
