# s3lib.sh - sourced by s3_ingest.sh and s3_cold_mount.sh: s3rver with a
# counting faultproxy in front of it, and the clients' settings.
#
# s3_up DIR BUCKET...   starts s3rver (tests/s3/s3rver.sh) and
#                       tests/s3/faultproxy.py --count-file DIR/count in
#                       front of it; sets S3_URL (the proxy: every client
#                       goes through it) and exports the credentials
# s3_down               stops both, by PID
# s3_count [KIND]       requests the proxy has seen so far (total by default)
# s3_counts             "GET n PUT n ..." so far, on one line
# Needs $root (the checkout) and $dir (DIR).

S3_URL=
s3_proxy_pid=

s3_up() {
	local sdir=$1 port _
	shift
	port=$("$root/tests/s3/s3rver.sh" start "$sdir" "$@" | awk '{ print $1 }') ||
		return 1
	[ -n "$port" ] || return 1
	rm -f "$sdir/proxy.port" "$sdir/count"
	: >"$sdir/proxy.control"
	python3 "$root/tests/s3/faultproxy.py" --upstream "127.0.0.1:$port" \
		--control "$sdir/proxy.control" --port-file "$sdir/proxy.port" \
		--count-file "$sdir/count" 2>"$sdir/proxy.log" &
	s3_proxy_pid=$!
	s3_dir=$sdir
	for _ in $(seq 100); do
		[ -s "$sdir/proxy.port" ] && [ -s "$sdir/count" ] && break
		sleep 0.05
	done
	[ -s "$sdir/proxy.port" ] || { echo "s3lib: the proxy did not start" >&2; return 1; }
	S3_URL=http://127.0.0.1:$(cat "$sdir/proxy.port")
	export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
	export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL
}

s3_down() {
	if [ -n "$s3_proxy_pid" ]; then
		kill "$s3_proxy_pid" 2>/dev/null || true
		wait "$s3_proxy_pid" 2>/dev/null || true
		s3_proxy_pid=
	fi
	[ -z "${s3_dir:-}" ] || "$root/tests/s3/s3rver.sh" stop "$s3_dir" || true
}

s3_count() {
	awk -v k="${1:-total}" '$1 == k { print $2 }' "$s3_dir/count"
}

s3_counts() {
	awk '$1 != "total" { printf "%s%s %s", (NR > 2 ? " " : ""), $1, $2 }' "$s3_dir/count"
}

# /usr/bin/aws (Debian's awscli; an `aws` earlier on PATH may be a shim).
s3_aws() {
	env -u AWS_CA_BUNDLE /usr/bin/aws --endpoint-url "$S3_URL" "$@"
}

# lodefs_stat MNT PYTHON-EXPR-ON-s: a value from MNT/.lodefs/stats.
lodefs_stat() {
	python3 -c 'import json, sys; s = json.load(open(sys.argv[1] + "/.lodefs/stats")); print(eval(sys.argv[2]))' "$1" "$2"
}

# mount_wait MNT PID: until MNT is mounted by PID (20 s).
mount_wait() {
	local _
	for _ in $(seq 1 400); do
		mountpoint -q "$1" && return 0
		kill -0 "$2" 2>/dev/null || { echo "$1: the daemon died" >&2; return 1; }
		sleep 0.05
	done
	echo "$1 not mounted after 20 s" >&2
	return 1
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
