#!/usr/bin/env bash
# run_with_s3rver.sh - runs a test program against a fresh s3rver, with a
# fault-injecting proxy in front of it, and always stops both.
#
#   tests/s3/run_with_s3rver.sh CMD [ARG...]
#
# CMD sees:
#   LODEFS_S3_ENDPOINT  http://127.0.0.1:PORT, s3rver itself
#   LODEFS_S3_PROXY     http://127.0.0.1:PORT, faultproxy.py in front of it,
#                       which checks every SigV4 signature as AWS would
#   LODEFS_S3_FAULTS    the proxy's control file (see faultproxy.py)
#   LODEFS_S3_BUCKET    lodefs-test (made at start)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY   S3RVER, S3RVER
# and nothing of the caller's AWS_* settings or ~/.aws files.  When s3rver
# cannot be installed (no npm, no network), prints a TAP skip instead.
set -u
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v python3 >/dev/null 2>&1; then
	echo "1..0 # SKIP python3 is missing (tests/s3/faultproxy.py needs it)"
	exit 0
fi
if ! "$here/s3rver.sh" install >&2; then
	echo "1..0 # SKIP s3rver is not installed and npm could not install it"
	exit 0
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/lodefs-s3-XXXXXX") || exit 1
proxy_pid=
cleanup() {
	if [ -n "$proxy_pid" ]; then
		kill "$proxy_pid" 2>/dev/null
		wait "$proxy_pid" 2>/dev/null
	fi
	"$here/s3rver.sh" stop "$dir"
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

if ! out=$("$here/s3rver.sh" start "$dir" lodefs-test); then
	echo "Bail out! s3rver did not start"
	tail -n 20 "$dir/s3rver.log" >&2 2>/dev/null
	exit 1
fi
port=${out%% *}

python3 "$here/faultproxy.py" --upstream "127.0.0.1:$port" \
	--control "$dir/faults" --port-file "$dir/proxy.port" \
	--secret S3RVER >"$dir/proxy.log" 2>&1 </dev/null &
proxy_pid=$!
for _ in $(seq 100); do
	[ -s "$dir/proxy.port" ] && break
	kill -0 "$proxy_pid" 2>/dev/null || break
	sleep 0.1
done
if ! [ -s "$dir/proxy.port" ]; then
	echo "Bail out! faultproxy.py did not start"
	cat "$dir/proxy.log" >&2
	exit 1
fi

# Only what the suite sets: no stray profile, endpoint or region.
for v in $(env | sed -n 's/^\(AWS_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export HOME=$dir AWS_CONFIG_FILE=$dir/no-config
export AWS_SHARED_CREDENTIALS_FILE=$dir/no-credentials
export LODEFS_S3_ENDPOINT=http://127.0.0.1:$port
proxy_port=$(cat "$dir/proxy.port")
export LODEFS_S3_PROXY=http://127.0.0.1:$proxy_port
export LODEFS_S3_FAULTS=$dir/faults
export LODEFS_S3_BUCKET=lodefs-test
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER

"$@"
rc=$?
if [ "$rc" -ne 0 ]; then
	echo "run_with_s3rver.sh: $1 exited $rc; the proxy's last words:" >&2
	tail -n 40 "$dir/proxy.log" >&2
fi
exit "$rc"
