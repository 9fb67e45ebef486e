#!/bin/sh
# Citizens' documents: the counter's CUPS keeps neither job files nor job history
# (docs/decisions.md). Writes both directives as plain top-level lines of cupsd.conf (never
# through cupsAdminSetServerSettings, whose rewrite CUPS 2.4 refuses) and checks the result
# with `cupsd -t` before it replaces the file.
#   cups-privacy.sh [CUPSD_CONF [CUPS_FILES_CONF]]   default /etc/cups/cupsd.conf
set -eu
conf=${1:-/etc/cups/cupsd.conf}
files=${2:-/etc/cups/cups-files.conf}
tmp=$(mktemp "$conf.XXXXXX")
trap 'rm -f "$tmp"' EXIT
{
  echo "# Guichet Proche: citizens' documents are not kept (docs/decisions.md)"
  echo "PreserveJobFiles No"
  echo "PreserveJobHistory No"
  grep -v -E '^[[:space:]]*PreserveJob(Files|History)[[:space:]]' "$conf" \
    | grep -v -F "# Guichet Proche: citizens' documents are not kept" || true
} > "$tmp"
if ! cupsd -t -c "$tmp" -s "$files" >&2; then
  echo "cups-privacy: cupsd -t refuses the new $conf; left unchanged" >&2
  exit 1
fi
cat "$tmp" > "$conf"   # keeps the file's owner and mode
