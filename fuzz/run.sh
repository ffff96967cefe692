#!/usr/bin/env bash
# Run every atheris harness in fuzz/ for a bounded time (the `make fuzz` target).
#
#   fuzz/run.sh                      # each harness for $FUZZ_SECONDS (default 60) seconds
#   FUZZ_SECONDS=600 fuzz/run.sh sip # one harness, ten minutes
#
# Corpora grow in fuzz/corpus/<harness>/ (seeded from fuzz/seeds/<harness>/, not committed);
# a crash is written to fuzz/artifacts/<harness>-crash-<sha1> and makes this script fail.
# Reproduce one with:  .venv/bin/python fuzz/fuzz_<harness>.py fuzz/artifacts/<file>
set -u -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-$root/.venv/bin/python}"
seconds="${FUZZ_SECONDS:-60}"
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
    harnesses=(tftp_request tftp_session sip vendor_matchers)
fi

if ! "$python" -c "import atheris" 2>/dev/null; then
    echo "fuzz: atheris is not installed for $python (pip install -e '.[fuzz]')" >&2
    exit 2
fi

# Longest input per harness: a whole UDP datagram for TFTP requests (a 5000-digit blksize only
# fits in one), the SIP parser's 8 KiB limit plus a little, libFuzzer's default otherwise.
max_len() {
    case "$1" in
        tftp_request) echo 65507 ;;
        sip) echo 9000 ;;
        *) echo 4096 ;;
    esac
}

mkdir -p "$here/artifacts"
[ -d "$here/seeds" ] || "$python" "$here/make_seeds.py"
failed=()
for name in "${harnesses[@]}"; do
    script="$here/fuzz_$name.py"
    if [ ! -f "$script" ]; then
        echo "fuzz: no harness $script" >&2
        exit 2
    fi
    mkdir -p "$here/corpus/$name"
    echo "== fuzz $name for ${seconds}s"
    # -timeout: one input taking > 10 s is a hang; -rss_limit_mb: a memory blow-up is a finding.
    if ! "$python" "$script" -max_total_time="$seconds" -max_len="$(max_len "$name")" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$here/artifacts/$name-" \
            "$here/corpus/$name" "$here/seeds/$name" 2>"$here/artifacts/$name.log"; then
        failed+=("$name")
        tail -n 40 "$here/artifacts/$name.log" >&2
    else
        grep -E "^(stat::number_of_executed_units|stat::new_units_added|Done)" "$here/artifacts/$name.log" || true
        grep -E "cov: [0-9]+" "$here/artifacts/$name.log" | tail -n 1 || true
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: no findings"
