#!/usr/bin/env bash
# Fetches Debian's linux-source-6.12 at the pinned version with a private apt
# configuration (the system's apt setup is not touched), checks its sha256
# against scripts/kernel-source.sha256, and extracts it into a git repository
# in the cache whose first commit, tagged "pristine", is the unmodified tree.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

want_sha=$(awk '{print $1}' "$KPKG_SHA256_FILE")
deb_dir=$MMVIEW_CACHE/download
deb=$deb_dir/${KPKG}_${KPKG_VERSION}_all.deb

if git -C "$SRC_DIR" rev-parse -q --verify refs/tags/pristine >/dev/null 2>&1; then
	exit 0
fi

mkdir -p "$deb_dir"
if ! [ -f "$deb" ] || [ "$(sha256sum "$deb" | awk '{print $1}')" != "$want_sha" ]; then
	log "fetching $KPKG=$KPKG_VERSION"
	apt_dir=$MMVIEW_CACHE/apt-kernel
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
	cat >"$apt_dir/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SRC
	aopts=(-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache"
		-o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
	apt-get "${aopts[@]}" update -qq || die "apt-get update with the private trixie sources failed"
	rm -f "$deb_dir"/*.deb
	if ! (cd "$deb_dir" && apt-get "${aopts[@]}" download "$KPKG=$KPKG_VERSION"); then
		avail=$(apt-cache "${aopts[@]}" policy "$KPKG" 2>/dev/null | sed -n 's/^ *Candidate: //p')
		die "the pinned $KPKG=$KPKG_VERSION cannot be fetched from Debian any more (candidate now: ${avail:-none}).
Update KPKG_VERSION/KVER in scripts/lib/common.sh and scripts/kernel-source.sha256, and check linux-patches/ still apply."
	fi
	got=$(sha256sum "$deb" | awk '{print $1}')
	[ "$got" = "$want_sha" ] || die "sha256 mismatch for $deb: got $got, want $want_sha"
fi

log "extracting $KVER into $SRC_DIR"
tmp=$MMVIEW_CACHE/src/.extract
rm -rf "$tmp" "$SRC_DIR"
mkdir -p "$tmp"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/src/linux-source-*.tar.xz'
tar -xf "$tmp"/usr/src/linux-source-*.tar.xz -C "$tmp"
mv "$tmp"/linux-source-6.12 "$SRC_DIR"
rm -rf "$tmp"

log "recording the pristine tree in git (once)"
git -C "$SRC_DIR" init -q
git -C "$SRC_DIR" config user.name mmview-build
git -C "$SRC_DIR" config user.email mmview-build@localhost
git -C "$SRC_DIR" config gc.auto 0
git -C "$SRC_DIR" add -A -f .
git -C "$SRC_DIR" commit -q -m "Linux $KVER (Debian $KPKG $KPKG_VERSION)"
git -C "$SRC_DIR" tag pristine
