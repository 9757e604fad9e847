#!/usr/bin/env bash
# test_container.sh - the mount bind-mounted into a container that runs as another uid (TAP).
#
# Usage: test_container.sh PATH/TO/lodefs   (or $LODEFS); needs root and
# bubblewrap (LODEFS_TEST_PKGS in tools/deps.sh).
#
# Two ways of running a container as uid 65534 (nobody), both with bwrap:
# - rootful, like Docker: bwrap runs as root (no user namespace), binds the
#   mount at /data, and the process inside drops to 65534 with setpriv.
# - rootless, like Podman: setpriv drops to 65534 first, then bwrap
#   --unshare-user --uid 65534 makes a user namespace.  (bwrap --uid alone,
#   started as root, maps the inside uid to outside uid 0, which FUSE sees
#   as the owner: not a test of another uid at all.)  Inside it, files of
#   unmapped uids (root's) show as 65534, the overflow uid.
# In both, FUSE checks the caller's uid in the initial namespace: without
# -o allow_other every uid but the mounter's gets EACCES on any access (the
# kernel refuses before lodefs sees the request), and the rootless bwrap
# cannot even stat the mount to bind it.  We are root, so /etc/fuse.conf
# needs no user_allow_other.
. "$(dirname "$0")/lib.sh" "$@"

need_root
need_lodefs
need_cmd bwrap setpriv cmp
[ -x /usr/bin/python3 ] || skip_all "no /usr/bin/python3"

src=$T/store
mnt=$T/mnt
chmod 0711 "$T" # uid 65534 must reach $mnt, or every check is a false EACCES
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
box=(--unshare-pid --unshare-ipc --unshare-uts --unshare-net
	--die-with-parent --new-session
	--ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib
	--symlink usr/lib64 /lib64 --symlink usr/sbin /sbin
	--proc /proc --dev /dev --tmpfs /tmp
	--bind "$mnt" /data --chdir /data
	--clearenv --setenv PATH /usr/bin --setenv HOME /tmp)

# in_box CMD...: runs CMD in a rootful container (root bwrap, then uid 65534).
in_box() { (cd / && bwrap "${box[@]}" -- "${nobody[@]}" "$@"); }

# in_userns_box CMD...: runs CMD in a rootless container (uid 65534, then bwrap).
in_userns_box() {
	(cd / && "${nobody[@]}" bwrap --unshare-user --uid 65534 --gid 65534 \
		"${box[@]}" -- "$@")
}

# errno_of OP PATH: as uid 65534 outside any container, the errno name of
# os.OP(PATH) ("OK" if it worked).
errno_of() {
	(cd / && "${nobody[@]}" /usr/bin/python3 -c '
import errno, os, sys
try:
    getattr(os, sys.argv[1])(sys.argv[2])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))' "$1" "$2")
}

lodefs_mount "$src" "$mnt" allow_other
ok $? "lodefs mounts with allow_other" || done_testing

printf 'Otters hold hands while they sleep in the kelp forest.\n' >"$T/otters.txt"
cp "$T/otters.txt" "$mnt/docs/otters.txt"
ok $? "write docs/otters.txt through the mount (mode 0644)"
mkdir "$mnt/docs/box" && chmod 0777 "$mnt/docs/box"
ok $? "mkdir docs/box, chmod 0777: a directory the container may write"

is "$(errno_of stat "$mnt/docs/otters.txt")" OK "uid 65534: stat works"

# ---- rootful container, as with Docker ---------------------------------------
is "$(in_box id -u 2>&1)" 65534 "the container runs as uid 65534"
ok_cmd "it reads an existing doc at /data/docs/otters.txt" \
	in_box cmp /data/docs/otters.txt - <"$T/otters.txt"
printf 'The zeppelin drifted over the harbour at dawn.\n' >"$T/zeppelin.txt"
ok_cmd "it writes a new doc /data/docs/box/zeppelin.txt" \
	in_box sh -c 'cat >/data/docs/box/zeppelin.txt' <"$T/zeppelin.txt"
ok_cmd "the mount has docs/box/zeppelin.txt, byte for byte" \
	cmp "$T/zeppelin.txt" "$mnt/docs/box/zeppelin.txt"
diag "docs/box/zeppelin.txt is owned by uid $(stat -c %u "$mnt/docs/box/zeppelin.txt")"
out=$(cat "$mnt/query/zeppelin" 2>&1)
grep -q 'box/zeppelin.txt' <<<"$out"
ok $? "cat query/zeppelin finds it" || head -c 2000 <<<"$out" | diag
out=$(in_box cat /data/query/harbour 2>&1)
grep -q 'box/zeppelin.txt' <<<"$out"
ok $? "the container finds it too, through /data/query/harbour" ||
	head -c 2000 <<<"$out" | diag

# ---- rootless container, as with Podman --------------------------------------
if (cd / && "${nobody[@]}" bwrap --unshare-user --ro-bind / / true) 2>/dev/null; then
	is "$(in_userns_box id -u 2>&1)" 65534 "a rootless container runs as uid 65534"
	ok_cmd "it reads /data/docs/otters.txt" \
		in_userns_box cmp /data/docs/otters.txt - <"$T/otters.txt"
	ok_cmd "it writes /data/docs/box/rootless.txt" \
		in_userns_box sh -c 'echo "Written from a user namespace." >/data/docs/box/rootless.txt'
	is "$(cat "$mnt/docs/box/rootless.txt" 2>&1)" "Written from a user namespace." \
		"the mount has docs/box/rootless.txt"
else
	skip "rootless container" "unprivileged user namespaces are off"
fi

lodefs_umount "$mnt"
ok $? "unmount: the daemon exits 0"

# ---- without allow_other, other uids are refused -----------------------------
lodefs_mount "$src" "$mnt"
ok $? "lodefs mounts the same store without allow_other" || done_testing
ok_cmd "root, the mounter, still reads docs/otters.txt" \
	cmp "$T/otters.txt" "$mnt/docs/otters.txt"
is "$(errno_of stat "$mnt/docs/otters.txt")" EACCES "uid 65534: stat is EACCES"
is "$(errno_of listdir "$mnt/docs")" EACCES "uid 65534: readdir is EACCES"
out=$(in_box cat /data/docs/otters.txt 2>&1)
[ $? -ne 0 ] && grep -q 'Permission denied' <<<"$out"
ok $? "uid 65534 in a rootful container: Permission denied" || diag "$out"
out=$(in_box sh -c 'echo no >/data/docs/box/refused.txt' 2>&1)
[ $? -ne 0 ] && [ ! -e "$mnt/docs/box/refused.txt" ]
ok $? "uid 65534 cannot write a doc, and none appears" || diag "$out"
out=$(in_userns_box true 2>&1)
[ $? -ne 0 ] && grep -q 'Permission denied' <<<"$out"
ok $? "a rootless container cannot even bind the mount" || diag "$out"

lodefs_umount "$mnt"
ok $? "unmount: the daemon exits 0"
done_testing
