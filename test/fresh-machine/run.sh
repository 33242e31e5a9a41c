#!/usr/bin/env bash
# The README's set-up on a fresh Debian 12: debootstraps a minimal bookworm into DIR (outside the
# repo), installs git there and nothing else, clones this repo's committed HEAD into DIR/work/edgetune
# with a copy of the shared models and photos beside it (../shared), and runs the README's two commands,
# `./setup.sh` then `npm test`, as root inside the chroot. Prints each command's wall time and the test
# counts; the whole output goes to DIR.log. Takes about 36 minutes on 2 cores; not part of `npm test` or
# .ci/run. Run as root on a Debian or Ubuntu host with debootstrap (apt-get install debootstrap):
#
#   test/fresh-machine/run.sh [DIR]      DIR defaults to /var/tmp/edgetune-fresh-debian, and must not exist
#
# SHARED (default ../shared beside this checkout) is the folder copied in as ../shared; MIRROR is a
# Debian mirror for debootstrap (its default when unset). Every mount is undone on exit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
root=$(realpath -m "${1:-/var/tmp/edgetune-fresh-debian}")
shared=$(realpath "${SHARED:-$repo/../shared}")
log=$root.log

fail() {
  echo "fresh-machine: $*" >&2
  exit 1
}
((EUID == 0)) || fail "run as root (debootstrap and chroot need it)"
command -v debootstrap >/dev/null || fail "needs debootstrap: apt-get install debootstrap"
[[ -d $shared/models ]] || fail "no $shared/models: set SHARED to the shared folder"
[[ ! -e $root ]] || fail "$root exists: remove it (rm -rf $root) for a fresh machine, or name another DIR"
[[ $root != "$repo"/* ]] || fail "$root is inside the repo: name a DIR outside it"
branch=$(git -C "$repo" rev-parse --abbrev-ref HEAD)
gitdir=$(realpath "$(git -C "$repo" rev-parse --git-common-dir)")

mounted=()
mnt() {
  local target=$root$1
  shift
  mkdir -p "$target"
  mount "$@" "$target"
  mounted+=("$target")
}
cleanup() {
  # Processes the run left inside the chroot (none, when the tests clean up after themselves).
  local pid
  for pid in /proc/[0-9]*; do
    [[ $(readlink "$pid/root" 2>/dev/null) == "$root" ]] || continue
    echo "fresh-machine: process left in the chroot: ${pid#/proc/} $(tr '\0' ' ' <"$pid/cmdline")" | tee -a "$log"
    kill -9 "${pid#/proc/}" 2>/dev/null || true
  done
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -R "${mounted[i]}" 2>/dev/null || umount -lR "${mounted[i]}"; done
}
trap cleanup EXIT

in_root() { chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
  "$@"; }
timed() {
  local start=$SECONDS status=0
  "$@" || status=$?
  echo "fresh-machine: exit $status after $((SECONDS - start)) s: ${*: -1}" | tee -a "$log" >&3
  return "$status"
}

exec 3>&1 # the summary lines, while the commands' output goes to the log
: >"$log"
echo "fresh-machine: debootstrap bookworm into $root (log: $log)"
timed debootstrap --variant=minbase bookworm "$root" ${MIRROR:+"$MIRROR"} >>"$log" 2>&1

# A chroot, not a booted machine: installed packages must not start their daemons (sshd, mosquitto) in the
# host's network, as a booted Debian would; the tests start their own on free ports.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# A machine's / is a mount point; a chroot's folder is not until bound onto itself, and without that
# `unshare -m --propagation private` (deploy try's board namespace) fails with EINVAL.
mnt "" --bind "$root"
mnt /proc -t proc proc
mnt /sys --rbind /sys # with cgroup2 under it, for the tests that boot systemd in a container
mount --make-rslave "$root/sys"
mnt /dev --rbind /dev # with /dev/pts and /dev/shm
mount --make-rslave "$root/dev"
mnt /run -t tmpfs -o mode=0755 tmpfs
mnt /mnt/origin.git --bind -o ro "$gitdir"

echo "fresh-machine: apt-get install git"
timed in_root sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git' >>"$log" 2>&1
# The chroot trusts the certificates the host trusts (a host may reach the registry through a TLS proxy).
cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/host-trust.crt"
in_root update-ca-certificates >>"$log" 2>&1

echo "fresh-machine: git clone (branch $branch) into /work/edgetune, $shared as /work/shared"
mkdir -p "$root/work"
cp -r "$shared" "$root/work/shared"
timed in_root git clone -q --branch "$branch" /mnt/origin.git /work/edgetune >>"$log" 2>&1

echo "fresh-machine: ./setup.sh, then npm test (output in $log)"
status=0
timed in_root sh -c 'cd /work/edgetune && ./setup.sh' >>"$log" 2>&1 || status=$?
if ((status == 0)); then timed in_root sh -c 'cd /work/edgetune && npm test' >>"$log" 2>&1 || status=$?; fi
in_root sh -c 'node --version; npm --version' | sed 's/^/fresh-machine: /' | tee -a "$log"
grep -E '^ *(Test Files|Tests) ' "$log" | sed 's/\x1b\[[0-9;]*m//g; s/^ */fresh-machine: /' || true
exit "$status"
