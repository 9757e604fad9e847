# deps.sh - sourced by tools/check and tools/quickstart: installs what is
# missing from Debian's packages (as root, or through sudo).

lodefs_sudo() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "lodefs: need root (or sudo) to run: $*" >&2
		return 1
	fi
}

# lodefs_apt PKG... : installs the packages that dpkg does not know yet.
lodefs_apt() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "lodefs: installing ${missing[*]}" >&2
	lodefs_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		lodefs_sudo env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What building and running lodefs needs.
LODEFS_BUILD_PKGS=(gcc meson ninja-build pkg-config libfuse3-dev fuse3
	libjansson-dev libcurl4-openssl-dev libxxhash-dev libcriterion-dev)

# What the mount-level tests (tests/mount/) need beyond building: NFS in user
# space (ganesha with FSAL_VFS, libnfs's nfs-ls/nfs-cat/nfs-cp), containers
# (bwrap; setpriv is in util-linux), python3.
LODEFS_TEST_PKGS=(fuse3 nfs-ganesha nfs-ganesha-vfs libnfs-utils bubblewrap
	util-linux python3 attr jq)

# What tests/mount/test_programs.sh and test_concurrency.sh run on docs/
# (real programs on the mount; the tests install nothing themselves).
LODEFS_PROGRAM_PKGS=(git sqlite3 rsync tar findutils grep diffutils coreutils
	python3)
