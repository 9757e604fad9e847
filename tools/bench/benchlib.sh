# benchlib.sh - sourced by the benchmark scripts: what they all need.
# Needs $root (the checkout).

# bench_binary SCRIPT REL [GIVEN]: prints the absolute path of GIVEN, or,
# without it, of the newest build*/REL of the checkout; says why and
# returns 1 when there is none or it is not executable.
bench_binary() {
	local script=$1 rel=$2 bin=${3:-}
	if [ -z "$bin" ]; then
		bin=$(ls -t "$root"/build*/"$rel" 2>/dev/null | head -n 1 || true)
		[ -n "$bin" ] || {
			echo "$script: no build*/$rel; build first or pass its path" >&2
			return 1
		}
	fi
	[ -x "$bin" ] || { echo "$script: $bin is not executable" >&2; return 1; }
	realpath "$bin"
}
