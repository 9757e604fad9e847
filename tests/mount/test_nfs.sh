#!/usr/bin/env bash
# test_nfs.sh - the mount exported over NFSv4 by nfs-ganesha (FSAL_VFS), used through libnfs's tools (TAP).
#
# Usage: test_nfs.sh PATH/TO/lodefs   (or $LODEFS); needs root and the
# packages nfs-ganesha, nfs-ganesha-vfs, libnfs-utils (LODEFS_TEST_PKGS in
# tools/deps.sh; this test installs nothing).  No kernel NFS is involved:
# ganesha serves in user space on 127.0.0.1 and libnfs is a user-space client.
#
# What was learned getting ganesha 4.3 (Debian 12) to run here, first on a
# plain directory, then on a bindfs FUSE mount:
# - No rpcbind, statd, dbus or Kerberos is needed for NFSv4.  Ganesha logs
#   "Cannot register NFS V4 on TCP" (MAJ, no rpcbind), "dbus_bus_get failed"
#   (CRIT) and keytab errors (CRIT) and carries on serving.
# - Protocols = 4, Enable_NLM/RQUOTA/UDP = false: one TCP socket, on the port
#   chosen below (NFS_Port) and 127.0.0.1 only (Bind_Addr).  libnfs finds it
#   with ?version=4&nfsport=PORT (v4 needs no portmapper or mountd).
# - Graceless = true: otherwise the first 90 s refuse OPEN with
#   NFS4ERR_GRACE and nfs-cp fails.  RecoveryRoot and NFS_KRB5.CCacheDir in
#   $T keep ganesha out of /var/lib/nfs/ganesha and /var/run/ganesha.
# - Plugins_Dir must name Debian's multiarch directory
#   (/usr/lib/x86_64-linux-gnu/ganesha); the built-in default is /usr/lib64.
# - Attr_Expiration_Time = 0: ganesha's metadata cache otherwise trusts
#   attributes and directory listings for 60 s, so changes made through the
#   mount (not over NFS) are invisible to clients: new files are missing from
#   a listing and a grown file reads back cut at its old size.  With 0 it
#   revalidates, and sees a directory change through its mtime/ctime, so the
#   file system must update those as a local one does.
# - FSAL_VFS claims a FUSE mount like any file system ("type=fuse", fsid =
#   device number, which changes with every mount, so client handles do not
#   survive a remount).  It stores name_to_handle_at() handles and opens them
#   with open_by_handle_at(): after the kernel drops a FUSE inode (drop_caches
#   below) that works only if the file system supports export (bindfs does
#   with -o noforget; without it NFS clients get NFS4ERR_STALE).
# - ganesha must be stopped before the mount is unmounted: it holds the mount
#   open and fusermount3 -u fails with EBUSY.
# - nfs-ls prints "mode nlink uid gid size name", no "." or "..".
. "$(dirname "$0")/lib.sh" "$@"

need_root
need_lodefs
need_cmd ganesha.nfsd nfs-ls nfs-cat nfs-cp python3 cmp shuf
fsal=$(ls /usr/lib/*/ganesha/libfsalvfs.so /usr/lib64/ganesha/libfsalvfs.so \
	/usr/lib/ganesha/libfsalvfs.so 2>/dev/null | head -n 1)
[ -n "$fsal" ] || skip_all "no FSAL_VFS (package nfs-ganesha-vfs)"

src=$T/store
mnt=$T/mnt
mkdir -p "$T/ganesha"

# url PATH [ARGS]: the libnfs URL of PATH inside the export.
url() { echo "nfs://127.0.0.1/lodefs$1?version=4&nfsport=$port${2:+&$2}"; }

# ganesha_log: ganesha's complaints, without the noise it always makes here.
ganesha_log() {
	grep -E ':(WARN|MAJ|CRIT|FATAL) :' "$T/ganesha.log" |
		grep -vE 'RADOS|DBUS|dbus|krb5|keytab|principal|register NFS' |
		tail -n 30 | diag
}

port=
for p in $(shuf -i 20000-29999 -n 50); do
	port_open "$p" || { port=$p; break; }
done
[ -n "$port" ] || bail_out "no free TCP port on 127.0.0.1"

# allow_other: ganesha serves each request with the client's uid as its
# euid, and FUSE refuses any euid but the mounter's without allow_other.
lodefs_mount "$src" "$mnt" allow_other
ok $? "lodefs mounts with allow_other" || done_testing

printf 'Otters hold hands while they sleep in the kelp forest.\n' >"$T/hello.txt"
cp "$T/hello.txt" "$mnt/docs/hello.txt"
ok $? "write docs/hello.txt through the mount"

cat >"$T/ganesha.conf" <<EOF
NFS_CORE_PARAM {
	Protocols = 4;
	NFS_Port = $port;
	Bind_Addr = 127.0.0.1;
	Enable_NLM = false;
	Enable_RQUOTA = false;
	Enable_UDP = false;
	Plugins_Dir = "$(dirname "$fsal")";
}
NFSv4 {
	Graceless = true;
	RecoveryRoot = "$T/ganesha";
	Only_Numeric_Owners = true;
}
NFS_KRB5 {
	Active_krb5 = false;
	CCacheDir = "$T/ganesha";
}
EXPORT {
	Export_Id = 1;
	Path = "$mnt";
	Pseudo = "/lodefs";
	Protocols = 4;
	Transports = TCP;
	Access_Type = RW;
	Squash = No_Root_Squash;
	SecType = sys;
	Attr_Expiration_Time = 0;
	FSAL { Name = VFS; }
}
LOG {
	Default_Log_Level = EVENT;
	Components { FSAL = INFO; EXPORT = INFO; }
}
EOF

ganesha.nfsd -F -f "$T/ganesha.conf" -L "$T/ganesha.log" -p "$T/ganesha.pid" &
gpid=$!
lodefs_track "$gpid"
wait_for 30 grep -q 'NFS SERVER INITIALIZED' "$T/ganesha.log" &&
	wait_for 10 port_open "$port"
if ! ok $? "ganesha serves NFSv4 on 127.0.0.1:$port"; then
	tail -n 40 "$T/ganesha.log" | diag
	done_testing
fi
grep -qE 'Export +1 pseudo \(/lodefs\) with path' "$T/ganesha.log"
ok $? "ganesha exports the mount (FSAL_VFS claimed it)" || ganesha_log

# ---- reading -------------------------------------------------------------
out=$(nfs-ls "$(url /)" 2>&1)
ok $? "nfs-ls the export root" || diag "$out"
names=$(awk '{ print $NF }' <<<"$out" | sort | tr '\n' ' ')
for d in docs graph index kv nodes query vectors; do
	case " $names" in
	*" $d "*) ok 0 "nfs-ls shows $d/" ;;
	*)
		ok 1 "nfs-ls shows $d/"
		diag "nfs-ls: $names"
		;;
	esac
done
is "$(nfs-cat "$(url /docs/hello.txt)" 2>&1)" "$(cat "$T/hello.txt")" \
	"nfs-cat a doc written through the mount"
drop_caches
is "$(nfs-cat "$(url /docs/hello.txt)" 2>&1)" "$(cat "$T/hello.txt")" \
	"nfs-cat it again after the kernel dropped its caches (handles)"
is "$(nfs-cat "$(url /docs/hello.txt 'uid=65534&gid=65534')" 2>&1)" \
	"$(cat "$T/hello.txt")" "nfs-cat as uid 65534 (allow_other)"

# a change made through the mount shows over NFS at once
nfs-ls "$(url /docs)" >/dev/null 2>&1
printf 'Lighthouses guide ships past the rocks at night.\n' >"$mnt/docs/later.txt"
out=$(nfs-ls "$(url /docs)" 2>&1)
awk '{ print $NF }' <<<"$out" | grep -qx later.txt
ok $? "nfs-ls docs/ shows a doc just written through the mount" || diag "$out"
printf 'More about otters.\n' >>"$mnt/docs/hello.txt"
is "$(nfs-cat "$(url /docs/hello.txt)" 2>&1)" \
	"$(cat "$T/hello.txt"; echo 'More about otters.')" \
	"nfs-cat sees an append made through the mount"

# ---- writing ---------------------------------------------------------------
printf 'A zeppelin drifted over the harbour at dawn.\n' >"$T/fromnfs.txt"
ok_cmd "nfs-cp a local file into docs/" \
	nfs-cp "$T/fromnfs.txt" "$(url /docs/fromnfs.txt)"
ok_cmd "it arrived: the mount reads the same bytes" \
	cmp "$T/fromnfs.txt" "$mnt/docs/fromnfs.txt"
out=$(cat "$mnt/query/zeppelin" 2>&1)
grep -q 'fromnfs.txt' <<<"$out"
ok $? "cat query/zeppelin finds it" || head -c 2000 <<<"$out" | diag
is "$(nfs-cat "$(url /docs/fromnfs.txt)" 2>&1)" "$(cat "$T/fromnfs.txt")" \
	"nfs-cat reads it back"

# ---- a big directory -------------------------------------------------------
mkdir "$mnt/docs/big"
ok $? "mkdir docs/big through the mount"
python3 - "$mnt/docs/big" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(10000):
    os.close(os.open(os.path.join(d, f"f{i}"), os.O_CREAT | os.O_WRONLY, 0o644))
PY
ok $? "create 10,000 files in docs/big through the mount"
is "$(ls -f "$mnt/docs/big" | grep -vcx '\.\.\?')" 10000 \
	"ls docs/big through the mount counts 10,000"
nfs-ls "$(url /docs/big)" >"$T/big.ls" 2>&1
ok $? "nfs-ls docs/big" || head -n 20 "$T/big.ls" | diag
awk '{ print $NF }' "$T/big.ls" | sort >"$T/big.got"
seq -f 'f%.0f' 0 9999 | sort >"$T/big.want"
is "$(wc -l <"$T/big.got")" 10000 "nfs-ls docs/big lists 10,000 entries"
ok_cmd "nfs-ls docs/big lists exactly f0 ... f9999" \
	cmp "$T/big.want" "$T/big.got"

# ---- shutting down ------------------------------------------------------------
[ "$TAP_FAILED" -gt 0 ] && ganesha_log
lodefs_stop "$gpid"
lodefs_umount "$mnt"
ok $? "unmount after ganesha stopped: the daemon exits 0"
done_testing
