#!/usr/bin/env bash
# A self-signed TLS certificate for the nginx edge: branchloans.com, with www.branchloans.com, localhost
# and 127.0.0.1 as further subject alternative names; ECDSA P-256, valid 825 days.
#
#   scripts/generate-cert.sh [--force] [DIR]
#
# DIR defaults to $CERT_DIR, then to deploy/nginx/certs (git-ignored). Writes branchloans.com.crt and
# branchloans.com.key (mode 600). Idempotent: a certificate that matches its key, names every SAN and is
# valid for another 30 days is kept; --force replaces it.
set -euo pipefail

readonly NAME=branchloans.com
readonly SAN_CONFIG="DNS:${NAME},DNS:www.${NAME},DNS:localhost,IP:127.0.0.1"
# How `openssl x509 -ext subjectAltName` prints them.
readonly SAN_PRINTED=("DNS:${NAME}" "DNS:www.${NAME}" "DNS:localhost" "IP Address:127.0.0.1")
readonly DAYS=825
readonly RENEW_WITHIN_SECONDS=$((30 * 24 * 60 * 60))

usage() {
  sed -n '2,9s/^# \{0,1\}//p' "$0"
}

force=false
dir=""
for arg in "$@"; do
  case "$arg" in
    --force) force=true ;;
    -h | --help) usage; exit 0 ;;
    -*) printf 'unknown option: %s\n\n' "$arg" >&2; usage >&2; exit 2 ;;
    *)
      if [[ -n "$dir" ]]; then
        printf 'only one directory, please\n' >&2
        exit 2
      fi
      dir=$arg
      ;;
  esac
done
if [[ -z "$dir" ]]; then
  dir=${CERT_DIR:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/deploy/nginx/certs"}
fi

command -v openssl >/dev/null || { printf 'openssl is required\n' >&2; exit 1; }

crt="$dir/${NAME}.crt"
key="$dir/${NAME}.key"

# True when the pair on disk can be kept.
current() {
  [[ -s "$crt" && -s "$key" ]] || return 1
  openssl x509 -in "$crt" -noout -checkend "$RENEW_WITHIN_SECONDS" >/dev/null 2>&1 || return 1
  local sans san
  sans=$(openssl x509 -in "$crt" -noout -ext subjectAltName 2>/dev/null) || return 1
  for san in "${SAN_PRINTED[@]}"; do
    grep -qF -- "$san" <<<"$sans" || return 1
  done
  [[ "$(openssl x509 -in "$crt" -noout -pubkey 2>/dev/null)" == "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ]]
}

fingerprint() {
  openssl x509 -in "$crt" -noout -fingerprint -sha256
}

if [[ "$force" == false ]] && current; then
  printf 'kept %s (%s)\n' "$crt" "$(fingerprint)"
  exit 0
fi

mkdir -p "$dir"
umask 077
tmp=$(mktemp -d "$dir/.generate-cert.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$tmp/key" -out "$tmp/crt" -days "$DAYS" -sha256 \
  -subj "/O=Branch Loans (self-signed)/CN=${NAME}" \
  -addext "subjectAltName=${SAN_CONFIG}" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" 2>/dev/null

chmod 600 "$tmp/key"
chmod 644 "$tmp/crt"
# Key first: a reader that sees the new certificate also finds its key.
mv -f "$tmp/key" "$key"
mv -f "$tmp/crt" "$crt"
printf 'wrote %s and %s (%s)\n' "$crt" "$key" "$(fingerprint)"
