#!/usr/bin/env bash
# Installs the programs the preload tests run (Tests/PreloadTests), on Debian/Ubuntu via apt-get.
# Idempotent and quiet: installs only what is missing, and runs `apt-get update` only then.
#
#   tools/install-test-deps.sh              the required tools: gcc, g++, binutils (objdump), perl,
#                                           python3, git, sqlite3, coreutils (sort), tar, pkg-config;
#                                           for buddy-report's tests groff and man (the man pages),
#                                           chromium (the HTML page, headless), protoc (the pprof
#                                           file decoded by an independent reader), eu-addr2line
#   tools/install-test-deps.sh --with-jit   also the JIT runtimes the tests use when present:
#                                           node (nodejs) and java (a headless JDK 17)
#   BUDDY_TEST_JIT=1 tools/install-test-deps.sh   the same as --with-jit
#
# Tests whose program is missing are skipped with a reason, so on a system without apt-get (or
# without root or sudo) this script only lists what is missing and exits 0.
set -euo pipefail

with_jit="${BUDDY_TEST_JIT:-0}"
for arg in "$@"; do
    case "$arg" in
        --with-jit) with_jit=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "install-test-deps: unknown option $arg" >&2; exit 2 ;;
    esac
done

# command -> Debian package
required=(
    "gcc gcc"
    "g++ g++"
    "objdump binutils"
    "perl perl"
    "python3 python3"
    "git git"
    "sqlite3 sqlite3"
    "sort coreutils"
    "tar tar"
    "pkg-config pkgconf"
    "groff groff"
    "man man-db"
    "chromium chromium"
    "protoc protobuf-compiler"
    "eu-addr2line elfutils"
)
# Debian packages the library itself builds against (headers, no command to look for)
required_packages=(
    libunwind-dev
    golang-github-google-pprof-dev   # pprof's profile.proto, for protoc to decode buddy-report's output
)
optional=(
    "node nodejs"
    "java openjdk-17-jdk-headless"
)

missing=()
check() {
    local cmd="$1" pkg="$2"
    if ! command -v "$cmd" >/dev/null 2>&1; then missing+=("$pkg"); fi
}
for entry in "${required[@]}"; do check $entry; done
for pkg in "${required_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "$with_jit" = 1 ]; then
    for entry in "${optional[@]}"; do check $entry; done
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: missing ${missing[*]}; no apt-get here, install them by hand (their tests are skipped)" >&2
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "install-test-deps: missing ${missing[*]}; not root and no sudo, install them by hand (their tests are skipped)" >&2
        exit 0
    fi
fi

echo "install-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
