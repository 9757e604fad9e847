#!/usr/bin/env bash
# s3rver.sh - starts and stops the S3 server the tests run against.
#
#   tests/s3/s3rver.sh install          npm ci here, if node_modules is missing
#   tests/s3/s3rver.sh start DIR [BUCKET...]
#       starts s3rver 3.7.1 on 127.0.0.1 and a free port, data in DIR/data,
#       with each BUCKET made (default: lodefs-test); waits until it answers;
#       writes DIR/port and DIR/pid and prints "PORT PID".
#   tests/s3/s3rver.sh stop DIR        stops the server started in DIR (by PID)
#
# S3RVER_PORT=N start ... uses port N (to start a stopped server again on
# the port its clients know).
#
# s3rver needs NODE_OPTIONS=--openssl-legacy-provider (ListObjectsV2 paging
# fails without it).  Its credentials are S3RVER / S3RVER; it checks
# signatures, and it ignores conditional PUTs (If-Match, If-None-Match).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
js=$here/node_modules/s3rver/bin/s3rver.js

s3rver_install() {
	if ! [ -f "$js" ]; then
		if ! command -v npm >/dev/null 2>&1; then
			. "$here/../../tools/deps.sh"
			lodefs_apt nodejs npm || return 1
		fi
		(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || {
			echo "s3rver.sh: npm ci failed in $here" >&2
			return 1
		}
	fi
	s3rver_patch
}

# s3rver 3.7.1 answers a PUT (of an object or of a part) once the body has
# gone through its MD5 transform, before the file stream has written it:
# a GET right after the PUT can read an empty or short object.  Answer
# when the file stream has finished instead.  Idempotent.
s3rver_patch() {
	local f=$here/node_modules/s3rver/lib/stores/filesystem.js
	grep -q "lodefs: read-after-write" "$f" && return 0
	node - "$f" <<'JS' || { echo "s3rver.sh: cannot patch $f" >&2; return 1; }
const fs = require('fs');
const f = process.argv[2];
let s = fs.readFileSync(f, 'utf8'), n = 0;
s = s.replace(
  /\.on\('finish', \(\) => (?:\{\s*)?(resolve\(\[totalLength, md5Context\.digest\('hex'\)\]\));?(?:\s*\})?\)\s*\.pipe\(writeStream\);/g,
  (m, r) => { n++; return `.pipe(writeStream)
          .on('error', reject)
          .on('finish', () => ${r}); // lodefs: read-after-write`; });
if (n !== 2) { console.error(`expected 2 places, found ${n}`); process.exit(1); }
fs.writeFileSync(f, s);
JS
}

# A port nobody listens on (the kernel picks it; s3rver binds it right after).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

s3rver_start() {
	local dir=$1
	shift
	local buckets=("$@") args=() b port pid i
	[ ${#buckets[@]} -eq 0 ] && buckets=(lodefs-test)
	s3rver_install || return 1
	mkdir -p "$dir/data" || return 1
	for b in "${buckets[@]}"; do args+=(--configure-bucket "$b"); done
	for i in 1 2 3 4 5; do
		port=${S3RVER_PORT:-$(free_port)} || return 1
		NODE_OPTIONS=--openssl-legacy-provider setsid node "$js" -s \
			-d "$dir/data" -a 127.0.0.1 -p "$port" "${args[@]}" \
			>"$dir/s3rver.log" 2>&1 </dev/null &
		pid=$!
		for _ in $(seq 100); do
			if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
				echo "$port" >"$dir/port"
				echo "$pid" >"$dir/pid"
				echo "$port $pid"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	echo "s3rver.sh: s3rver did not start; see $dir/s3rver.log" >&2
	return 1
}

s3rver_stop() {
	local dir=$1 pid
	pid=$(cat "$dir/pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	rm -f "$dir/pid"
	return 0
}

case ${1:-} in
install) s3rver_install ;;
start)
	[ $# -ge 2 ] || { echo "usage: $0 start DIR [BUCKET...]" >&2; exit 2; }
	shift
	s3rver_start "$@"
	;;
stop)
	[ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
	s3rver_stop "$2"
	;;
*)
	echo "usage: $0 install | start DIR [BUCKET...] | stop DIR" >&2
	exit 2
	;;
esac
