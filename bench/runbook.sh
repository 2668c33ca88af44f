#!/usr/bin/env bash
# The manual runbook the product replaces, as an SRE runs it: one consumer
# after the other, one fresh ssh per action (no connection reuse), for the
# benchmark's comparison (bench/fleet.ts sets up the fleet and checks the
# result). Order as in the runbook: generate, grant (dual-active from here),
# per consumer back up / write / reload / health, then revoke the old
# password and write the store.
#   runbook.sh LAB_DIR REDIS_HOST:PORT USER SECRET COUNT HOST_IP...
# Consumer i: host HOST_IP[i % #hosts], /etc/rotation-app/fleet/USER-i.env.
# Prints `window=<s>` (grant done -> revoke start) and `wall=<s>` on stdout.
# The password lives in shell variables only: it reaches other processes on
# stdin (printf is a builtin), never on a command line.
set -euo pipefail
(($# >= 6)) || { echo "usage: $0 LAB_DIR REDIS_HOST:PORT USER SECRET COUNT HOST_IP..." >&2; exit 2; }
lab=$1 redis=$2 user=$3 secret=$4 count=$5
shift 5
hosts=("$@")
rhost=${redis%:*} rport=${redis##*:}
store="$lab/store/$secret"

die() { echo "runbook: $*" >&2; exit 1; }
now() { date +%s.%N; }
hash_of() { printf '%s' "$1" | sha256sum | cut -c1-64; }
admin() { # admin ACL-COMMAND: the command on stdin, the admin password in REDISCLI_AUTH
  local out
  out=$(printf '%s\n' "$1" | REDISCLI_AUTH="$(cat -- "$lab/secrets/redis-admin.pass")" \
    redis-cli --no-auth-warning -h "$rhost" -p "$rport" --user admin 2>&1) || true
  [ "$out" = OK ] || die "redis: ${1%% *} ${user} failed: $out"
}
# Pinned host keys, the operator key, no prompts, and explicitly no multiplexing.
ssh_opts=(-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes
  -o "UserKnownHostsFile=$lab/known_hosts" -o ControlMaster=no -o ControlPath=none
  -o ConnectTimeout=10 -i "$lab/operator/id_ed25519")
run_on() { ssh -n "${ssh_opts[@]}" "root@$1" "$2"; }    # run_on IP COMMAND
feed_on() { ssh "${ssh_opts[@]}" "root@$1" "$2"; }     # feed_on IP COMMAND < data
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", a - b }'; }

t0=$(now)
old=$(cat -- "$store")
new=$(openssl rand -hex 16)
[ ${#new} -eq 32 ] || die "openssl rand gave no password"
admin "ACL SETUSER $user on #$(hash_of "$new")"
granted=$(now)

for ((i = 0; i < count; i++)); do
  ip=${hosts[i % ${#hosts[@]}]}
  f=/etc/rotation-app/fleet/$user-$i.env
  # Same health command as the benchmark's consumers (healthCommand in lab/driver/fleet.ts).
  health="p=\$(sed -n 's/^REDIS_PASSWORD=//p' $f); if [ \"\$(REDISCLI_AUTH=\"\$p\" redis-cli --no-auth-warning -h $rhost -p $rport --user $user PING 2>&1)\" = PONG ]; then exit 0; else echo \"AUTH_FAILED $user-$i \" >> /var/log/rotation-app/fleet.log; exit 1; fi"
  run_on "$ip" "cp -p $f $f.bak" || die "$user-$i: backup failed"
  printf 'REDIS_PASSWORD=%s\n' "$new" | feed_on "$ip" "umask 077 && cat > $f.tmp && mv -f $f.tmp $f" || die "$user-$i: write failed"
  run_on "$ip" "sleep 1" || die "$user-$i: reload failed"
  # Like the product's consumers: 3 retries, 1 s apart.
  ok=0
  for try in 1 2 3 4; do
    if run_on "$ip" "$health"; then ok=1; break; fi
    sleep 1
  done
  ((ok)) || die "$user-$i: health check failed; old password NOT revoked"
done

revoking=$(now)
admin "ACL SETUSER $user !$(hash_of "$old")"
(umask 077 && printf '%s' "$new" >"$store.tmp" && mv -f -- "$store.tmp" "$store")
done_at=$(now)
echo "window=$(secs "$revoking" "$granted")"
echo "wall=$(secs "$done_at" "$t0")"
