# The gateway every load script measures or trains (bench/run.sh, bench/instructions.sh,
# scripts/perf-check.sh, scripts/release-pgo.sh): one `openai` channel to the mock
# upstream serving `mock-gpt` at $1 / $2 per 1M tokens, and one user with $1,000,000 and
# one key. Source it; the caller defines `die`.
#   wait_line FILE REGEX SECONDS PID        prints the first match of REGEX in FILE (a
#                                           server's address), dies if PID exits first
#   write_bench_config FILE MOCK_URL NAME   the configuration file (channel NAME-mock)
#   serve_bench_gateway BINARY CONFIG DIR [NAME]
#                                           starts `BINARY --config CONFIG serve` on a free
#                                           loopback port (logs in DIR/NAME.out and .err,
#                                           NAME `gateway` by default) and waits for its
#                                           /healthz; sets GW (its URL) and GW_PID, adds it
#                                           to PIDS
#   create_bench_key NAME COMMAND...        creates user NAME and a key with COMMAND (the
#                                           gateway's CLI with its configuration), prints it

wait_line() {
    local file=$1 re=$2 deadline=$((SECONDS + $3)) pid=$4 line
    while ((SECONDS < deadline)); do
        line=$(grep -m1 -oE "$re" "$file" 2>/dev/null || true)
        [[ -n $line ]] && { echo "$line"; return 0; }
        kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; die "process $pid died"; }
        sleep 0.05
    done
    cat "$file" >&2
    die "timed out waiting for /$re/ in $file"
}

write_bench_config() {
    local file=$1 mock=$2 name=$3
    cat >"$file" <<EOF
[[channels]]
name = "$name-mock"
type = "openai"
base_url = "$mock"
api_key = "$name-upstream-key"
models = ["mock-gpt"]

[[models]]
id = "mock-gpt"
provider = "Bench"
context = 1000000
input_usd_per_mtok = "1"
output_usd_per_mtok = "2"
EOF
}

create_bench_key() {
    local name=$1 key
    shift
    "$@" users create "$name" --balance-usd 1000000 >/dev/null
    key=$("$@" keys create --user "$name" --name "$name")
    [[ $key == sk-* ]] || die "keys create printed '$key'"
    printf '%s\n' "$key"
}

serve_bench_gateway() {
    local binary=$1 config=$2 dir=$3 name=${4:-gateway}
    TOKENHUB_LISTEN=127.0.0.1:0 "$binary" --config "$config" serve \
        >"$dir/$name.out" 2>"$dir/$name.err" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    GW=$(wait_line "$dir/$name.err" 'http://127\.0\.0\.1:[0-9]+' 60 "$GW_PID")
    local deadline=$((SECONDS + 20))
    until curl -fsS -o /dev/null "$GW/healthz"; do
        ((SECONDS < deadline)) || die "gateway /healthz did not answer"
        sleep 0.1
    done
}
