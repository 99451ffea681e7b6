#!/usr/bin/env bash
# Builds the Debian 13 (trixie) root that test/integration/systemd-service.test.ts boots with
# systemd-nspawn, once per machine, and prints its path as the last line of stdout.
#
#   ${CONSOLIDATOR_TEST_CACHE:-/var/cache/consolidator-test}/debian-trixie-<hash of this script>
#
# The hash covers this whole file, so changing the recipe builds a new image (old ones stay until
# removed by hand: `rm -rf /var/cache/consolidator-test`). Idempotent (an image that exists is
# reused), atomic (built in a temporary directory in the cache and renamed into place at the end, so
# an interrupted build never leaves an image that looks done) and locked (two runs at once build it
# once). The first build fetches about 100 MB of packages from the machine's Debian mirror and takes
# a few minutes; a test run boots a throw-away copy and never changes the image.
#
# The image holds what the package needs at run time (nodejs, ipmitool, openssh-client) and what the
# test uses, so that `apt-get install ./consolidator_*.deb` inside it needs no network.
# Env: CONSOLIDATOR_TEST_CACHE (cache directory), CONSOLIDATOR_TEST_MIRROR (Debian mirror URL;
# default: the first Debian mirror in the machine's apt sources, else deb.debian.org).
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "build-test-image: needs root (debootstrap, systemd-nspawn)" >&2
  exit 1
fi
for tool in debootstrap systemd-nspawn flock sha256sum; do
  command -v "$tool" >/dev/null || { echo "build-test-image: $tool missing (bash scripts/install-test-deps.sh)" >&2; exit 1; }
done

suite=trixie
# Packages beyond debootstrap's minbase: systemd as PID 1 (and dbus, which systemctl and logind
# expect), the .deb's Depends, and what the test runs inside (procps: ps/pkill; passwd and
# util-linux: useradd, runuser; apt needs nothing more to install a local .deb).
boot_packages=systemd,systemd-sysv,dbus
runtime_packages=(nodejs ipmitool openssh-client)
test_packages=(procps passwd util-linux)

cache=${CONSOLIDATOR_TEST_CACHE:-/var/cache/consolidator-test}
recipe_hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)
image="$cache/debian-$suite-$recipe_hash"

configured_mirror() {
  # deb822 sources (URIs: ...) first, then one-line sources (deb URL suite ...).
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -e security -e '^$' | head -n1 || true)
  if [[ -z $uri ]]; then
    uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
      awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' | grep -v security | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

if [[ -d $image ]]; then
  echo "$image"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
# Another run may have built it while this one waited for the lock.
if [[ -d $image ]]; then
  echo "$image"
  exit 0
fi
# Removes a build directory: first what an interrupted debootstrap left mounted in it (/proc, /sys,
# perhaps the host's /dev bound in), deepest first, then the files, never crossing into a mount.
remove_build() {
  local dir=$1 mounts
  mounts=$(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
  for m in $mounts; do umount -l "$m"; done
  rm -rf --one-file-system "$dir"
}
# Holding the lock, any build directory left is from an interrupted run.
for stale in "$cache"/.build-*; do
  [[ -e $stale ]] && remove_build "$stale"
done

mirror=${CONSOLIDATOR_TEST_MIRROR:-$(configured_mirror)}
build=$(mktemp -d "$cache/.build-$suite-$recipe_hash.XXXXXX")
trap 'remove_build "$build"' EXIT
root="$build/root"
started=$SECONDS

echo "build-test-image: debootstrap $suite from $mirror into $root (a few minutes, once per machine)" >&2
debootstrap --variant=minbase --include="$boot_packages" "$suite" "$root" "$mirror" >"$build/debootstrap.log" 2>&1 || {
  tail -n 30 "$build/debootstrap.log" >&2
  exit 1
}

# apt inside the root (not a boot: nspawn only gives it /proc, /dev and the host's network).
# Its output goes to the build log, shown when a step fails.
in_root() {
  systemd-nspawn --quiet --register=no --keep-unit --resolv-conf=replace-host --directory="$root" \
    --setenv=DEBIAN_FRONTEND=noninteractive -- "$@" >>"$build/apt.log" 2>&1 || {
    tail -n 30 "$build/apt.log" >&2
    return 1
  }
}
echo "build-test-image: apt-get install ${runtime_packages[*]} ${test_packages[*]}" >&2
in_root apt-get update
in_root apt-get install -y --no-install-recommends "${runtime_packages[@]}" "${test_packages[@]}"

# Kept: /var/lib/apt/lists (apt resolves the .deb's Depends from the installed packages and needs no
# network, but keeps the lists so a look-up inside still works). Dropped: the downloaded .debs.
in_root apt-get clean
# A machine id per boot (nspawn passes one), a fixed host name, and no resolver pointing at the host:
# the container runs with --private-network.
: >"$root/etc/machine-id"
echo consolidator-test >"$root/etc/hostname"
rm -f "$root/etc/resolv.conf"
# Units that only fail in a container with a read-only /sys and no hardware.
for unit in systemd-firstboot.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

cat >"$root/etc/consolidator-test-image" <<EOF
suite=$suite
recipe=$recipe_hash
mirror=$mirror
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
build_seconds=$((SECONDS - started))
EOF
mv "$root" "$image"
echo "build-test-image: built $image in $((SECONDS - started)) s" >&2
echo "$image"
