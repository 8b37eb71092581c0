#!/usr/bin/env bash
# `make run`: the local stack a newcomer tries the README's examples on.
#   run.sh ENV_FILE TABLE QUEUE REFUNDS_QUEUE SAMPLES_PORT FUNCTION...
# 1. moto (DynamoDB + SQS) on a free loopback port, the table and both queues as the SAM template makes them;
# 2. ENV_FILE (copied from .env.example if absent) pointed at them;
# 3. scripts/demo_store.py on 127.0.0.1:SAMPLES_PORT: examples/ as files (the sample statement source) and a demo
#    1C-Bitrix store's REST (examples/store.json), so .env.example's sources and store work offline;
# 4. the functions built once here, so the first curl answers at once instead of compiling for minutes;
# 5. `cargo lambda watch` on 127.0.0.1:9000 until Ctrl-C; everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
env_file=$1 table=$2 queue=$3 refunds_queue=$4 samples_port=$5
shift 5
functions=("$@")
PY=.venv/bin/python

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 9000 "$samples_port"; do
  if port_busy "$port"; then
    echo "port $port on 127.0.0.1 is already in use (another make run?); stop that first" >&2
    exit 1
  fi
done

samples_pid= watch_pid=
cleanup() {
  # cargo lambda watch and the function processes it started are one process group of their own.
  [ -n "$watch_pid" ] && kill -- "-$watch_pid" 2>/dev/null || true
  [ -n "$samples_pid" ] && kill "$samples_pid" 2>/dev/null || true
  scripts/stack.sh stop
  rm -f .local/run-env-file
}
trap cleanup EXIT
trap 'exit 130' INT TERM

endpoint=$(scripts/stack.sh start)
urls=$("$PY" scripts/create_resources.py "$endpoint" "$table" "$queue" "$refunds_queue")
queue_url=$(sed -n 1p <<<"$urls")
refunds_url=$(sed -n 2p <<<"$urls")
[ -f "$env_file" ] || cp .env.example "$env_file"
# An env file made from an older .env.example lacks the variables added since (a new function's settings): they
# are appended with their example values, and said, so the functions start as documented.
"$PY" - "$env_file" <<'PY'
import re, sys
path = sys.argv[1]
names = lambda text: {m.group(1) for m in re.finditer(r"^([A-Z][A-Z0-9_]*)=", text, re.M)}
have = names(open(path, encoding="utf-8").read())
missing = [l for l in open(".env.example", encoding="utf-8").read().splitlines()
           if (m := re.match(r"^([A-Z][A-Z0-9_]*)=", l)) and m.group(1) not in have]
if missing:
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n# Added by make run from .env.example (new since this file was made):\n" + "\n".join(missing) + "\n")
    print(f"{path}: added from .env.example: " + ", ".join(l.split("=", 1)[0] for l in missing), file=sys.stderr)
PY
# cargo lambda watch's env-file parser says only `ParseError`: name the line and the fix instead (an `.env` made
# from an older `.env.example` may hold a bare JSON value).
"$PY" - "$env_file" <<'PY'
import sys
bad = []
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    line = line.strip()
    if not line or line.startswith("#") or "=" not in line:
        continue
    name, value = line.split("=", 1)
    if value and value[0] not in "'\"" and any(c in value for c in "\"' \t"):
        bad.append(f"  line {n}: {name}: write the value in single quotes: {name}='{value}'")
if bad:
    sys.exit(f"{sys.argv[1]}: cargo lambda watch cannot read these lines:\n" + "\n".join(bad))
PY
sed -i -e "s#^AWS_ENDPOINT_URL=.*#AWS_ENDPOINT_URL=$endpoint#" -e "s#^EVENTS_QUEUE_URL=.*#EVENTS_QUEUE_URL=$queue_url#" \
  -e "s#^REFUNDS_QUEUE_URL=.*#REFUNDS_QUEUE_URL=$refunds_url#" -e "s#^LEDGER_TABLE=.*#LEDGER_TABLE=$table#" "$env_file"
# scripts/show_order.py reads the table and queue from the env file this stack runs with.
realpath "$env_file" >.local/run-env-file

"$PY" scripts/demo_store.py "$samples_port" examples/store.json >.local/samples.log 2>&1 &
samples_pid=$!

# cargo lambda watch compiles a function on its first call; building here first makes that call instant
# (a fresh clone on 2 cores: about 4 minutes once; afterwards seconds).
echo "building the functions (${functions[*]}); on a fresh clone this takes a few minutes, once" >&2
# Exactly as watch builds them (it runs `cargo run --manifest-path Cargo.toml --bin <function>` from here, seen
# with ps): `-p <function>` or all of them at once would resolve dependency features differently, and watch would
# compile again on the first call.
for f in "${functions[@]}"; do cargo build --manifest-path Cargo.toml --bin "$f"; done

echo "moto at $endpoint; sample files and the demo store at http://127.0.0.1:$samples_port/; env file $env_file"
echo "ready: functions at http://localhost:9000/lambda-url/<function>/..."
# In the background and waited for, so Ctrl-C or a TERM runs the cleanup at once (bash defers traps while a
# foreground child runs).
PATH="$PWD/.venv/bin:$PATH" setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port 9000 \
  --env-file "$env_file" &
watch_pid=$!
wait "$watch_pid"
