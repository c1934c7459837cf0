#!/usr/bin/env bash
# QEMU vs us, end to end: migrate RAM_SIZE (default 1G) of random guest RAM
#   1. QEMU 7.2 -> QEMU 7.2 over a unix socket (guest RAM backed by a file of
#      random bytes, vCPUs stopped, no bandwidth cap, 60 s downtime limit), and
#   2. the same with our demo as two processes (--role source / destination;
#      our source's RAM is the same file, --mem-path),
# interleaved, RUNS times each (default 3); prints each run's rate
# (transferred bytes / total time, GiB/s), the medians, the ratio, and each
# destination's peak RSS (VmHWM) against the guest RAM size. Our two sides'
# checksums must agree on every run. Each run's line ends with the load
# averages (compare runs of one invocation only on a shared machine).
#
# Each run also moves the same file's bytes raw into fresh memory of another
# process (scripts/unix-socket-floor.py: sendfile into the socket, reads into
# memory a helper thread faults in): the floor that the kernel's copy and
# first-touch zeroing set on this machine, with the medians' ratios to it.
#
# Every leg's destination starts from the same state of free memory
# (MEMORY=warm by default, or cold, or as-is; scripts/memory_state.py says
# why and how), set right before the leg's transfer: QEMU's once both QEMUs
# are up, before `migrate`; ours and the floor's before the receiver starts
# (the sender follows at once).
#
# Usage: scripts/qemu-vs-us.sh            (RAM_SIZE=1G RUNS=3 MEMORY=warm by default)
# Skips (exit 0, with the reason) when qemu-system-x86_64 is not installed,
# unless VMSTATE_REQUIRE_QEMU=1; any other failure ends it non-zero.
set -euo pipefail

RAM_SIZE=${RAM_SIZE:-1G}
RUNS=${RUNS:-3}
MEMORY=${MEMORY:-warm}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QEMU=${QEMU:-qemu-system-x86_64}

die() { echo "qemu-vs-us: FAILED: $*" >&2; exit 1; }

if ! command -v "$QEMU" >/dev/null 2>&1; then
    if [[ "${VMSTATE_REQUIRE_QEMU:-}" == 1 ]]; then
        die "$QEMU is not installed and VMSTATE_REQUIRE_QEMU=1"
    fi
    echo "qemu-vs-us: SKIPPED: $QEMU is not installed (QEMU's side cannot run)"
    exit 0
fi
command -v python3 >/dev/null || die "python3 is needed for QMP"
case "$MEMORY" in warm | cold | as-is) ;; *) die "MEMORY must be warm, cold or as-is, not '$MEMORY'" ;; esac

ram_bytes=$(python3 -c '
import sys
s = sys.argv[1].strip().upper()
units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
print(int(float(s[:-1]) * units[s[-1]]) if s[-1] in units else int(s) << 20)' "$RAM_SIZE")
ram_mib=$((ram_bytes >> 20))

echo "== building the demo (release)"
(cd "$ROOT" && cargo build --release -q -p vmstate-examples --bin demo) || die "cargo build"
DEMO="${CARGO_TARGET_DIR:-$ROOT/target}/release/demo"
[[ -x "$DEMO" ]] || die "no demo binary at $DEMO"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qemu-vs-us.XXXXXX")
RAMFILE=$(mktemp /dev/shm/qemu-vs-us-ram.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK" "$RAMFILE"
}
trap cleanup EXIT

echo "== $ram_mib MiB of random guest RAM for QEMU's source ($RAMFILE)"
head -c "$ram_bytes" /dev/urandom >"$RAMFILE"
[[ $(stat -c %s "$RAMFILE") -eq $ram_bytes ]] || die "could not write $ram_bytes random bytes"

accel=tcg
[[ -r /dev/kvm && -w /dev/kvm ]] && accel=kvm

# Waits until process $1 prints a line matching $2 into $3; dies naming $4
# (and the stderr file $5) if it exits first or takes 30 s.
wait_for_line() {
    local pid=$1 pattern=$2 out=$3 what=$4 err=$5 tries=0
    until grep -q "$pattern" "$out" 2>/dev/null; do
        tries=$((tries + 1))
        [[ $tries -lt 600 ]] || die "$what did not listen: $(cat "$err")"
        kill -0 "$pid" 2>/dev/null || die "$what exited: $(cat "$err")"
        sleep 0.05
    done
}

# Each run writes "rate_gibs dst_vmhwm" to $WORK/result (run in this shell,
# not a subshell, so a failure's exit cleans up every process it started).

# One QEMU -> QEMU run.
qemu_run() {
    local n=$1 d="$WORK/qemu$1"
    mkdir -p "$d"
    "$QEMU" -S -nodefaults -display none -accel "$accel" \
        -object "memory-backend-file,id=ram0,size=$ram_bytes,mem-path=$RAMFILE,share=on" \
        -machine pc,memory-backend=ram0 -m "${ram_mib}M" \
        -qmp "unix:$d/src.qmp,server=on,wait=off" >"$d/src.log" 2>&1 &
    local src=$!
    PIDS+=("$src")
    # The destination's RAM block must have the source's name (ram0), in
    # anonymous memory of its own.
    "$QEMU" -S -nodefaults -display none -accel "$accel" \
        -object "memory-backend-ram,id=ram0,size=$ram_bytes" \
        -machine pc,memory-backend=ram0 -m "${ram_mib}M" \
        -incoming "unix:$d/mig.sock" \
        -qmp "unix:$d/dst.qmp,server=on,wait=off" >"$d/dst.log" 2>&1 &
    local dst=$!
    PIDS+=("$dst")
    local line
    line=$(MEMORY=$MEMORY RAM_BYTES=$ram_bytes python3 "$ROOT/scripts/qemu_migrate.py" "$d/src.qmp" "$d/dst.qmp" \
        "unix:$d/mig.sock" "$dst") || {
        cat "$d/src.log" "$d/dst.log" >&2
        die "QEMU run $n"
    }
    wait "$src" || die "QEMU source of run $n exited $?: $(cat "$d/src.log")"
    wait "$dst" || die "QEMU destination of run $n exited $?: $(cat "$d/dst.log")"
    local ms bytes hwm
    ms=$(sed -n 's/.*total_time_ms=\([0-9]*\).*/\1/p' <<<"$line")
    bytes=$(sed -n 's/.*transferred=\([0-9]*\).*/\1/p' <<<"$line")
    hwm=$(sed -n 's/.*dst_vmhwm=\([0-9]*\).*/\1/p' <<<"$line")
    [[ -n "$ms" && -n "$bytes" && -n "$hwm" && "$ms" -gt 0 ]] || die "QEMU run $n: bad result: $line"
    [[ "$bytes" -ge "$ram_bytes" ]] || die "QEMU run $n sent $bytes bytes, less than the guest RAM"
    python3 -c "import sys; b, ms = int(sys.argv[1]), int(sys.argv[2]); print(f'{b / (ms / 1000) / 2**30:.3f}', sys.argv[3])" \
        "$bytes" "$ms" "$hwm" >"$WORK/result"
}

# One run of our source and destination as two processes.
our_run() {
    local n=$1 d="$WORK/ours$1"
    mkdir -p "$d"
    "$DEMO" --role destination --incoming "unix:$d/mig.sock" --ram-size "${ram_mib}M" \
        --accept-timeout 120 >"$d/dst.out" 2>"$d/dst.err" &
    local dst=$!
    PIDS+=("$dst")
    wait_for_line "$dst" "waiting on" "$d/dst.out" "our destination of run $n" "$d/dst.err"
    # Our source's guest RAM is the same file QEMU's source maps (QEMU's
    # memory-backend-file, share=on), so neither source allocates memory of
    # its own and both destinations start from the same free memory.
    "$DEMO" --role source --uri "unix:$d/mig.sock" --ram-size "${ram_mib}M" --mem-path "$RAMFILE" \
        --max-bandwidth 0 --downtime-limit 60000 --dirty-rate 0 --used-percent 100 \
        --no-progress-bar --timeout-secs 600 >"$d/src.out" 2>"$d/src.err" ||
        die "our source of run $n: $(cat "$d/src.err")"
    wait "$dst" || die "our destination of run $n: $(cat "$d/dst.err")"
    grep " xxh64 " "$d/src.out" >"$d/src.sums"
    grep " xxh64 " "$d/dst.out" >"$d/dst.sums"
    [[ -s "$d/src.sums" ]] || die "run $n: the source printed no checksums"
    diff "$d/src.sums" "$d/dst.sums" >&2 || die "run $n: source and destination checksums differ"
    local bytes secs hwm
    # "  rate          0.312 GiB/s (1076376035 bytes in 3.242 s)"
    bytes=$(sed -n 's/^  rate .*(\([0-9]*\) bytes in \([0-9.]*\) s)$/\1/p' "$d/src.out")
    secs=$(sed -n 's/^  rate .*(\([0-9]*\) bytes in \([0-9.]*\) s)$/\2/p' "$d/src.out")
    hwm=$(sed -n 's/^  peak RSS .*, \([0-9]*\) bytes).*/\1/p' "$d/dst.out")
    [[ -n "$bytes" && -n "$secs" && -n "$hwm" ]] || die "run $n: no rate or peak RSS in the output"
    grep -q "^  total time    " "$d/src.out" || die "run $n: no 'total time' line"
    [[ "$bytes" -ge "$ram_bytes" ]] || die "our run $n sent $bytes bytes, less than the guest RAM"
    python3 -c "import sys; b, s = int(sys.argv[1]), float(sys.argv[2]); print(f'{b / s / 2**30:.3f}', sys.argv[3])" \
        "$bytes" "$secs" "$hwm" >"$WORK/result"
}

# One run of the floor (scripts/unix-socket-floor.py): the same file's bytes
# sent with sendfile(2) into a unix socket and read straight into fresh memory
# that a helper thread faults in, two processes, no migration work at all.
floor_run() {
    local n=$1 d="$WORK/floor$1"
    mkdir -p "$d"
    python3 "$ROOT/scripts/unix-socket-floor.py" receive "$d/floor.sock" "$ram_bytes" \
        >"$d/dst.out" 2>"$d/dst.err" &
    local dst=$!
    PIDS+=("$dst")
    wait_for_line "$dst" "listening on" "$d/dst.out" "the floor's receiver of run $n" "$d/dst.err"
    python3 "$ROOT/scripts/unix-socket-floor.py" send "$d/floor.sock" "$RAMFILE" 2>"$d/src.err" ||
        die "the floor's sender of run $n: $(cat "$d/src.err")"
    wait "$dst" || die "the floor's receiver of run $n: $(cat "$d/dst.err")"
    local rate hwm
    # "floor 2.000 GiB/s (1073741824 bytes in 0.500 s) vmhwm 1090000000"
    rate=$(sed -n 's/^floor \([0-9.]*\) GiB\/s .* vmhwm \([0-9]*\)$/\1/p' "$d/dst.out")
    hwm=$(sed -n 's/^floor \([0-9.]*\) GiB\/s .* vmhwm \([0-9]*\)$/\2/p' "$d/dst.out")
    [[ -n "$rate" && -n "$hwm" ]] || die "floor run $n: no rate in: $(cat "$d/dst.out")"
    echo "$rate $hwm" >"$WORK/result"
}

# Puts free memory into the MEMORY state before a leg.
prepare_memory() {
    python3 "$ROOT/scripts/memory_state.py" "$MEMORY" "$ram_bytes" || die "memory state $MEMORY"
}

# The 1/5/15-minute load averages: the rates mean little without them on a
# shared machine.
loadavg() { [[ -r /proc/loadavg ]] && cut -d' ' -f1-3 /proc/loadavg || echo "?"; }
ratio() { python3 -c "import sys; print(f'{int(sys.argv[1]) / int(sys.argv[2]):.3f}')" "$1" "$ram_bytes"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "== $RUNS runs each, interleaved: $ram_mib MiB, unix socket, no bandwidth cap, downtime-limit 60 s ($accel), destination memory $MEMORY"
qemu_rates=() our_rates=() floor_rates=()
for n in $(seq 1 "$RUNS"); do
    qemu_run "$n" # (qemu_migrate.py prepares the memory right before `migrate`)
    read -r rate hwm <"$WORK/result"
    qemu_rates+=("$rate")
    echo "  run $n  QEMU -> QEMU  $rate GiB/s   destination peak RSS $((hwm >> 20)) MiB ($(ratio "$hwm")x guest RAM)   load $(loadavg)"
    prepare_memory
    our_run "$n"
    read -r rate hwm <"$WORK/result"
    our_rates+=("$rate")
    echo "  run $n  ours -> ours  $rate GiB/s   destination peak RSS $((hwm >> 20)) MiB ($(ratio "$hwm")x guest RAM)   load $(loadavg)"
    prepare_memory
    floor_run "$n"
    read -r rate hwm <"$WORK/result"
    floor_rates+=("$rate")
    echo "  run $n  socket floor  $rate GiB/s   receiver peak RSS $((hwm >> 20)) MiB ($(ratio "$hwm")x guest RAM)   load $(loadavg)"
done
q=$(median "${qemu_rates[@]}")
o=$(median "${our_rates[@]}")
f=$(median "${floor_rates[@]}")
div() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}x')" "$1" "$2"; }
echo "== medians: QEMU $q GiB/s, ours $o GiB/s, ours/QEMU $(div "$o" "$q")"
echo "== the socket floor $f GiB/s: ours $(div "$o" "$f") of it, QEMU $(div "$q" "$f"); twice QEMU would be $(div "$(python3 -c "import sys; print(2 * float(sys.argv[1]))" "$q")" "$f") of it"
