#!/usr/bin/env bash
# Set-up that `npm run demo`, `npm test` and .ci/run go through, so that the README's
# two commands are all a fresh machine needs:
#
#   scripts/setup.sh demo|test|node
#
# 1. System packages: the lines of scripts/deps/debian-packages.txt whose USERS
#    column names demo or test (none for "node"). Each one counts as present when its
#    probe (a command or a path) exists. Missing ones are installed with apt-get when
#    this runs as root on Debian or Ubuntu (one line says so); anywhere else the script
#    prints exactly what is missing and exits 1.
# 2. Node: checks the version, then runs `npm ci` when node_modules is missing or does
#    not match package-lock.json (scripts/deps/node-modules-current.mjs).
#
# Nothing is done, and nothing is printed, when everything is already there.
# For tests: SOFTWIRE_DEPS_LIST=FILE replaces the list, SOFTWIRE_OS_RELEASE=FILE
# /etc/os-release.
set -euo pipefail
cd "$(dirname "$0")/.."

want=${1:-test}
case "$want" in
  demo | test | node) ;;
  *)
    echo "usage: $0 demo|test|node" >&2
    exit 2
    ;;
esac

LIST=${SOFTWIRE_DEPS_LIST:-scripts/deps/debian-packages.txt}
OS_RELEASE=${SOFTWIRE_OS_RELEASE:-/etc/os-release}
case "$want" in demo) who='npm run demo' ;; *) who='npm test' ;; esac

present() {
  case "$1" in
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

is_debian_like() {
  [ -r "$OS_RELEASE" ] || return 1
  local id id_like
  # shellcheck disable=SC1090
  id=$(. "$OS_RELEASE" && echo "${ID:-}")
  # shellcheck disable=SC1090
  id_like=$(. "$OS_RELEASE" && echo "${ID_LIKE:-}")
  case " $id $id_like " in
    *" debian "* | *" ubuntu "*) command -v apt-get >/dev/null ;;
    *) return 1 ;;
  esac
}

# The daemon of a package we just installed: stop it and keep it from starting at boot.
quiet_service() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl disable --now --quiet "$1" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$1" ]; then
    "/etc/init.d/$1" stop >/dev/null 2>&1 || true
  fi
}

missing=() missing_why=() services=()
if [ "$want" != node ]; then
  while read -r pkg probe users rest || [ -n "${pkg:-}" ]; do
    case "$pkg" in '' | '#'*) continue ;; esac
    case ",$users," in *",$want,"*) ;; *) continue ;; esac
    present "$probe" && continue
    missing+=("$pkg")
    missing_why+=("  $pkg (no $probe): ${rest#\# }")
    case ",$users," in *,service,*) services+=("$pkg") ;; esac
  done <"$LIST"
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && is_debian_like; then
    echo "setup: installing ${missing[*]} with apt-get (needed by $who; list: $LIST)"
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    export DEBIAN_FRONTEND=noninteractive
    # A fresh cloud machine often runs unattended-upgrades at first boot: wait for
    # its dpkg lock (bounded) rather than fail.
    apt=(apt-get -q -o DPkg::Lock::Timeout=300)
    if ! { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      echo "setup: apt-get install ${missing[*]} failed (output above)" >&2
      exit 1
    fi
    for s in "${services[@]}"; do quiet_service "$s"; done
  else
    {
      echo "setup: $who needs these, which are missing:"
      printf '%s\n' "${missing_why[@]}"
      if is_debian_like; then
        echo "Install them as root:  apt-get install ${missing[*]}"
        echo "(run as root, this script installs them itself)"
      else
        echo "These are Debian/Ubuntu package names; install the same tools with your"
        echo "distribution's package manager, so that each command or path above exists."
      fi
    } >&2
    exit 1
  fi
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: softwire needs Node.js 20 or later; found $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi

if ! why=$(node scripts/deps/node-modules-current.mjs); then
  echo "setup: $why: running npm ci"
  npm ci --no-audit --no-fund
fi
