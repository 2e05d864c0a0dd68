#!/bin/sh
# The fetcher image's root filesystem, as an mmdebstrap extract hook ($1): the extract variant
# unpacks busybox, curl and ca-certificates (and their libraries) but runs no package script.
# This adds busybox's applets as commands (sh, tar, mktemp …) where Debian ships none, the CA
# bundle, and curl_user (uid 100, gid 101) with its home, as curlimages/curl has.
set -eu
root="$1"
applets="$(chroot "$root" /bin/busybox --list)"
for applet in $applets; do
  [ -e "$root/bin/$applet" ] || [ -e "$root/usr/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
mkdir -p "$root/etc/ssl/certs" "$root/home/curl_user" "$root/tmp"
chmod 1777 "$root/tmp"
cat "$root"/usr/share/ca-certificates/mozilla/*.crt > "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/bin/sh\ncurl_user:x:100:101:curl_user:/home/curl_user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\ncurl_group:x:101:curl_user\nnogroup:x:65534:\n' > "$root/etc/group"
chown 100:101 "$root/home/curl_user"
