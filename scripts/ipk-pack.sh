# Sourced by scripts/build-ipk.sh and scripts/build-luci-ipk.sh: packs an opkg
# package the way OpenWrt's ipkg-build does, reproducibly.
#
#   pack_ipk WORK OUT   WORK holds data/ (the installed tree) and control/ (control
#                       and any conffiles, postinst, prerm, ...); writes OUT
#
# The outer container is a gzip'd tar of ./debian-binary ("2.0"), ./data.tar.gz and
# ./control.tar.gz in that order. Members are root-owned with mtime SOURCE_DATE_EPOCH
# (which must be set), so two builds of the same tree give the same bytes.

# Deterministic tar of the current directory's listed members (root-owned, fixed mtime).
det_tar() {
  tar --format=gnu --numeric-owner --owner=0 --group=0 --mtime="@$SOURCE_DATE_EPOCH" "$@"
}

pack_ipk() {
  local work=$1 out=$2 members=()
  local f
  for f in control conffiles preinst postinst prerm postrm; do
    [ -e "$work/control/$f" ] && members+=("./$f")
  done
  (cd "$work/data" && det_tar --sort=name -cf - .) | gzip -9n >"$work/data.tar.gz"
  (cd "$work/control" && det_tar -cf - "${members[@]}") | gzip -9n >"$work/control.tar.gz"
  printf '2.0\n' >"$work/debian-binary"
  chmod 0644 "$work/debian-binary" "$work/data.tar.gz" "$work/control.tar.gz"
  mkdir -p "$(dirname "$out")"
  (cd "$work" && det_tar -cf - ./debian-binary ./data.tar.gz ./control.tar.gz) | gzip -9n >"$out.tmp"
  mv -f "$out.tmp" "$out"
}
