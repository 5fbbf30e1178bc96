#!/bin/sh
# Builds the amd64 container image from packaging/docker/Dockerfile on a machine with no
# Docker daemon and no access to Docker Hub, then smoke-tests it. Needs root and Debian's
# buildah and debootstrap (apt-get install buildah debootstrap), a Debian mirror and crates.io.
#
#   packaging/docker/build-local.sh [IMAGE]        (default IMAGE: maglev:latest)
#   packaging/docker/build-local.sh --print-bases  (the base image names it reads)
#
# The Dockerfile's two base images are made locally when missing, under the names it asks for:
#   debian:bookworm-slim      debootstrap --variant=minbase bookworm (no docs trimmed: larger
#                             than Docker Hub's slim image, the same packages otherwise)
#   rust:<v>-bookworm         that image + gcc, libc6-dev, ca-certificates, and this machine's
#                             rustup with its <v> toolchain (rustc +<v> must exist here), laid
#                             out as the official image does (/usr/local/rustup, /usr/local/cargo)
# Then `buildah bud --pull=never` builds the Dockerfile unchanged (crates vendored by the
# host's cargo into a copy of the context, apt-get from the Debian mirror), and the image is run: `maglev --version`, then the daemon on
# packaging/examples/local.toml in a private network namespace, queried with `maglevc`.
#
# buildah runs with chroot isolation (works inside a container) and its default storage
# (overlay; where overlay cannot be mounted set driver = "vfs" in
# /etc/containers/storage.conf); it takes a few GB under /var/lib/containers. On 2 busy
# cores the first build took 11 min (release build of maglev), a rebuild reuses the cargo
# target cache mount. Only the host's architecture is built: arm64 needs rustup's
# aarch64-unknown-linux-gnu std, which the Dockerfile's `rustup target add` fetches from
# static.rust-lang.org.
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), BUILDAH_ISOLATION
# (chroot); existing base images are reused, REBUILD_BASE=1 remakes them.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
image=${1:-maglev:latest}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"

die() { echo "build-local: $*" >&2; exit 1; }
say() { echo "build-local: $*" >&2; }

# The base image names, read from the Dockerfile.
rust_ref=$(sed -n 's/^FROM .*\(rust:[^ ]*\) AS build$/\1/p' "$here/Dockerfile")
slim_ref=$(sed -n 's/^FROM \(debian:[^ ]*\)$/\1/p' "$here/Dockerfile")
[ -n "$rust_ref" ] && [ -n "$slim_ref" ] || die "cannot read the base images from the Dockerfile"
rust_version=${rust_ref#rust:}
rust_version=${rust_version%-bookworm}
suite=${slim_ref#debian:}
suite=${suite%-slim}
# For tests/packaging_docker.rs: the names this script would make.
if [ "${1:-}" = --print-bases ]; then
    echo "$rust_ref $slim_ref"
    exit 0
fi
[ "$(id -u)" = 0 ] || die "needs root (buildah storage, debootstrap)"
for t in buildah debootstrap rustup cargo git ip unshare; do
    command -v "$t" >/dev/null 2>&1 || die "missing $t"
done
[ "$(dpkg --print-architecture)" = amd64 ] || die "only amd64 hosts are handled"

work=$(mktemp -d)
ctr=
cleanup() {
    [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

have_image() {
    [ "${REBUILD_BASE:-0}" != 1 ] && buildah inspect --type image "docker.io/library/$1" >/dev/null 2>&1
}

if ! have_image "$slim_ref"; then
    say "debootstrap --variant=minbase $suite -> $slim_ref"
    debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin
    ctr=$(buildah from scratch)
    mnt=$(buildah mount "$ctr")
    cp -a "$work/rootfs/." "$mnt/"
    buildah umount "$ctr" >/dev/null
    buildah config --cmd /bin/bash "$ctr"
    buildah commit -q "$ctr" "docker.io/library/$slim_ref" >/dev/null
    buildah rm "$ctr" >/dev/null
    ctr=
    rm -rf "$work/rootfs"
fi

if ! have_image "$rust_ref"; then
    # A toolchain named like the tag (1.95), else the default one if it is that version.
    tc="+$rust_version"
    rustc "$tc" -V >/dev/null 2>&1 || tc="+$(rustup default | cut -d' ' -f1)"
    full=$(rustc "$tc" -V | cut -d' ' -f2)
    case $full in
    "$rust_version" | "$rust_version".*) ;;
    *) die "no Rust $rust_version toolchain here (default is $full; rustup toolchain list)" ;;
    esac
    sysroot=$(rustc "$tc" --print sysroot)
    rustup_bin=$(readlink -f "$(command -v rustup)")
    triple=$(rustc "$tc" -vV | sed -n 's/^host: //p')
    say "$slim_ref + gcc + Rust $full ($sysroot) -> $rust_ref"
    ctr=$(buildah from --pull=never "docker.io/library/$slim_ref")
    buildah run "$ctr" -- sh -c 'apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            gcc libc6-dev ca-certificates >/dev/null && rm -rf /var/lib/apt/lists/*'
    mnt=$(buildah mount "$ctr")
    install -d "$mnt/usr/local/rustup/toolchains" "$mnt/usr/local/cargo/bin"
    # The toolchain without its HTML docs (not needed to build; ~600 MB).
    tar -C "$sysroot" --exclude=./share/doc -cf - . |
        (install -d "$mnt/usr/local/rustup/toolchains/$full-$triple" &&
            tar -C "$mnt/usr/local/rustup/toolchains/$full-$triple" -xf -)
    install -m 0755 "$rustup_bin" "$mnt/usr/local/cargo/bin/rustup"
    for p in cargo rustc rustdoc; do ln -s rustup "$mnt/usr/local/cargo/bin/$p"; done
    printf 'version = "12"\ndefault_toolchain = "%s-%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
        "$full" "$triple" >"$mnt/usr/local/rustup/settings.toml"
    buildah umount "$ctr" >/dev/null
    buildah config --env RUSTUP_HOME=/usr/local/rustup --env CARGO_HOME=/usr/local/cargo \
        --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env RUST_VERSION="$full" "$ctr"
    buildah run "$ctr" -- rustc --version
    buildah commit -q "$ctr" "docker.io/library/$rust_ref" >/dev/null
    buildah rm "$ctr" >/dev/null
    ctr=
fi

# The build context: the repository's files (tracked and new, not ignored) plus its crates
# vendored by the host's cargo, with a .cargo/config.toml that points cargo at them. The
# build container then needs no registry access (cargo inside it does not trust a TLS
# proxy that the host trusts), and the image is the same as one built online.
say "build context with vendored crates"
ctx=$work/context
install -d "$ctx/.cargo"
git -C "$root" ls-files -z --cached --others --exclude-standard |
    (cd "$root" && tar --null -T - -cf - 2>/dev/null) | tar -C "$ctx" -xf -
(cd "$root" && cargo vendor --locked --versioned-dirs --quiet "$ctx/vendor") >/dev/null
printf '%s\n' '[source.crates-io]' 'replace-with = "vendored-sources"' \
    '[source.vendored-sources]' 'directory = "vendor"' >"$ctx/.cargo/config.toml"
cp "$here/Dockerfile.dockerignore" "$ctx/.dockerignore"

say "buildah bud -f packaging/docker/Dockerfile -t $image (amd64)"
start=$(date +%s)
buildah bud --pull=never --layers --platform linux/amd64 -f "$ctx/packaging/docker/Dockerfile" \
    -t "$image" "$ctx"
say "built $image in $(($(date +%s) - start)) s"
buildah images "$image"

# Smoke test: the binary, then the daemon on local.toml in its own network namespace
# (loopback only, so the example's fixed ports cannot meet another daemon's). NET_RAW is
# in Docker's default capability set but not in buildah run's; the binary's file
# capability needs it in the bounding set (exec fails with EPERM otherwise).
ctr=$(buildah from --pull=never "$image")
buildah run --cap-add CAP_NET_RAW "$ctr" -- /usr/sbin/maglevd --version
buildah run --cap-add CAP_NET_RAW "$ctr" -- /usr/bin/maglevc --help >/dev/null
say "daemon on local.toml (VPP off) for 4 s as uid $(buildah run "$ctr" -- id -u), then maglevc show backends"
unshare --net sh -c '
    ip link set lo up
    buildah run --cap-add CAP_NET_RAW --volume "$1/packaging/examples:/examples:ro" "$2" -- sh -c "
        /usr/sbin/maglevd --config /examples/local.toml --vpp-api-addr \"\" --vpp-stats-addr \"\" \
            >/tmp/daemon.log 2>&1 &
        sleep 4
        /usr/bin/maglevc show backends; rc=\$?
        kill \$!; wait \$! 2>/dev/null
        echo \"--- daemon log (last lines)\"; tail -n 3 /tmp/daemon.log
        exit \$rc"
' smoke "$root" "$ctr" | tee "$work/smoke.txt"
# The states local.toml promises; ICMP up shows the file capability works as uid 10001.
for want in 'lo-icmp4 .* up ' 'lo-icmp6 .* up ' 'self-grpc .* up ' 'self-metrics .* up ' \
    'closed-port .* down ' 'wrong-path .* down '; do
    grep -q "^$want" "$work/smoke.txt" || die "smoke test: no line matching '$want'"
done
say "ok: $image"
