#!/usr/bin/env bash
# Runs the cargo-fuzz targets, each for a bounded time or number of executions, and
# prints one line per target and a summary. See fuzz/README.md.
#
#   fuzz/run.sh                       every target, 30 s each (the CI smoke run)
#   fuzz/run.sh --time 3600 tlv_decode
#   fuzz/run.sh --runs 1000000 --sanitizer none --jobs 2 pairing_handlers
#
# New inputs go to fuzz/corpus/<target> (not committed), which starts from the committed
# seeds in fuzz/seeds/<target>; crashes go to fuzz/artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")"

time_limit=30
runs=""
jobs=1
sanitizer=address
targets=()
while (($#)); do
  case "$1" in
    --time) time_limit="$2"; shift 2 ;;
    --runs) runs="$2"; time_limit=""; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --sanitizer) sanitizer="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -O -s "$sanitizer"

dictionary() {
  case "$1" in
    tlv_*|pairing_handlers) echo dict/tlv.dict ;;
    frame_decoder) echo "" ;;
    mdns_*) echo dict/mdns.dict ;;
    adaptive_*) echo dict/adaptive.dict ;;
    *) echo dict/http.dict ;;
  esac
}

failed=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  log="artifacts/$target/last-run.log"
  options=(-rss_limit_mb=1024 -malloc_limit_mb=256 -timeout=20 -print_final_stats=1
           "-artifact_prefix=artifacts/$target/")
  [[ -n "$time_limit" ]] && options+=("-max_total_time=$time_limit")
  [[ -n "$runs" ]] && options+=("-runs=$runs")
  dict=$(dictionary "$target")
  [[ -n "$dict" ]] && options+=("-dict=$dict")
  if ((jobs > 1)); then
    options+=("-fork=$jobs")
  fi
  start=$(date +%s)
  status=0
  cargo +nightly fuzz run -O -s "$sanitizer" "$target" "corpus/$target" "seeds/$target" \
    -- "${options[@]}" >"$log" 2>&1 || status=$?
  elapsed=$(( $(date +%s) - start ))
  executed=$( { grep -a -o 'stat::number_of_executed_units: *[0-9]*' "$log" || true; } |
    awk '{s+=$2} END {print s+0}')
  if ((executed == 0)); then
    # -fork prints per-job progress lines rather than final stats.
    executed=$( { grep -a -o '^#[0-9]*' "$log" || true; } | tr -d '#' | sort -n | tail -1)
    executed=${executed:-0}
  fi
  rate=$(( executed / (elapsed > 0 ? elapsed : 1) ))
  if ((status == 0)); then
    printf 'PASS %-22s %10d executions in %5d s (%d/s)\n' "$target" "$executed" "$elapsed" "$rate"
  else
    failed=$((failed + 1))
    printf 'FAIL %-22s after %d executions; log: fuzz/%s\n' "$target" "$executed" "$log"
    grep -a -m1 -A12 -E "panicked|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" | sed 's/^/    /' || true
    ls "artifacts/$target"/crash-* "artifacts/$target"/oom-* "artifacts/$target"/timeout-* 2>/dev/null |
      sed 's/^/    input: fuzz\//' || true
  fi
done
echo "fuzz: ${#targets[@]} targets, $failed failed"
((failed == 0))
