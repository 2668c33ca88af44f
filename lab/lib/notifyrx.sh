# shellcheck shell=bash
# The lab's notification receiver (lab/notifyrx/server.js), sourced after
# common.sh: it stands in for the services bin/rotate notifies (a generic
# webhook endpoint, a Slack incoming webhook, PagerDuty's Events API v2),
# which the lab cannot reach. On 127.0.1.40:8400; the credentials a stack's
# rotation:notify reads are files of secrets/ (0600): the webhook's URL and
# HMAC key, the Slack hook's URL (which holds its token), PagerDuty's routing
# key and API address. Every request is a line of run/notifyrx-deliveries.jsonl;
# run/notifyrx-faults.json (or PUT /_faults) makes it answer 500, hang or
# close the connection. Never prints a key or a URL that holds one.

NOTIFYRX_IP=127.0.1.40
NOTIFYRX_PORT=8400
NOTIFYRX_URL="http://$NOTIFYRX_IP:$NOTIFYRX_PORT"
NOTIFYRX_RECORD="$RUN/notifyrx-deliveries.jsonl"
NOTIFYRX_FAULTS="$RUN/notifyrx-faults.json"
NOTIFYRX_PIDFILE="$RUN/notifyrx.pid"
NOTIFYRX_WEBHOOK_KEY="$LAB_DIR/secrets/notify-webhook.key"
NOTIFYRX_WEBHOOK_URL_FILE="$LAB_DIR/secrets/notify-webhook.url"
NOTIFYRX_SLACK_URL_FILE="$LAB_DIR/secrets/notify-slack.url"
NOTIFYRX_PD_KEY="$LAB_DIR/secrets/notify-pagerduty.key"
NOTIFYRX_PD_URL_FILE="$LAB_DIR/secrets/notify-pagerduty.url"

notifyrx_ok() {
  pidfile_alive "$NOTIFYRX_PIDFILE" && [[ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$NOTIFYRX_URL/healthz" 2>/dev/null)" == 200 ]]
}

# The credentials (kept across restarts and --reset, like the other admin secrets).
notifyrx_seed() {
  local token
  gen_pass "$NOTIFYRX_WEBHOOK_KEY" 40
  gen_pass "$NOTIFYRX_PD_KEY" 32
  [[ -s "$NOTIFYRX_WEBHOOK_URL_FILE" ]] || echo "$NOTIFYRX_URL/webhook" | write_secret_file "$NOTIFYRX_WEBHOOK_URL_FILE" root:
  [[ -s "$NOTIFYRX_PD_URL_FILE" ]] || echo "$NOTIFYRX_URL/pagerduty" | write_secret_file "$NOTIFYRX_PD_URL_FILE" root:
  if [[ ! -s "$NOTIFYRX_SLACK_URL_FILE" ]]; then
    # Like Slack's: the path holds the hook's token.
    gen_pass "$NOTIFYRX_SLACK_URL_FILE.token" 24
    token="$(cat "$NOTIFYRX_SLACK_URL_FILE.token")"
    echo "$NOTIFYRX_URL/slack/services/TLAB/BLAB/$token" | write_secret_file "$NOTIFYRX_SLACK_URL_FILE" root:
    rm -f "$NOTIFYRX_SLACK_URL_FILE.token"
  fi
}

notifyrx_start() {
  kill_pidfile "$NOTIFYRX_PIDFILE"
  kill_listeners "$NOTIFYRX_IP" "$NOTIFYRX_PORT"
  mkdir -p "$RUN"
  (umask 077; touch "$NOTIFYRX_RECORD")
  # A clean environment: nothing of the caller's reaches the service.
  setsid env -i PATH="$PATH" LANG=C.UTF-8 node "$LAB_SRC/notifyrx/server.js" --listen "$NOTIFYRX_IP:$NOTIFYRX_PORT" \
    --record "$NOTIFYRX_RECORD" --faults "$NOTIFYRX_FAULTS" --pidfile "$NOTIFYRX_PIDFILE" \
    --webhook-key-file "$NOTIFYRX_WEBHOOK_KEY" --pagerduty-key-file "$NOTIFYRX_PD_KEY" </dev/null >>"$RUN/notifyrx.out" 2>&1 &
  wait_for 10 notifyrx_ok || die "the notification receiver did not come up (see $RUN/notifyrx.out)"
}

notifyrx_stop() {
  kill_pidfile "$NOTIFYRX_PIDFILE"
  kill_listeners "$NOTIFYRX_IP" "$NOTIFYRX_PORT"
}

notifyrx_up() {
  notifyrx_seed
  if notifyrx_ok; then say "notification receiver already up on $NOTIFYRX_IP:$NOTIFYRX_PORT"
  else say "starting the notification receiver on $NOTIFYRX_IP:$NOTIFYRX_PORT"; notifyrx_start; fi
}

# --reset: no deliveries recorded, no faults planned (the credentials stay).
notifyrx_reset() {
  rm -f "$NOTIFYRX_RECORD" "$NOTIFYRX_FAULTS"
}

notifyrx_status() {
  port_status notifyrx "$NOTIFYRX_IP" "$NOTIFYRX_PORT"
}

notifyrx_env() {
  cat <<EOF2
export NOTIFYRX_URL=$NOTIFYRX_URL
export NOTIFYRX_RECORD=$(printf '%q' "$NOTIFYRX_RECORD")
export NOTIFYRX_FAULTS=$(printf '%q' "$NOTIFYRX_FAULTS")
export NOTIFY_WEBHOOK_KEY_FILE=$(printf '%q' "$NOTIFYRX_WEBHOOK_KEY")
export NOTIFY_WEBHOOK_URL_FILE=$(printf '%q' "$NOTIFYRX_WEBHOOK_URL_FILE")
export NOTIFY_SLACK_URL_FILE=$(printf '%q' "$NOTIFYRX_SLACK_URL_FILE")
export NOTIFY_PAGERDUTY_KEY_FILE=$(printf '%q' "$NOTIFYRX_PD_KEY")
export NOTIFY_PAGERDUTY_URL_FILE=$(printf '%q' "$NOTIFYRX_PD_URL_FILE")
EOF2
}

# lab.json's entry (one JSON object; file names only, no key or URL holding one).
notifyrx_json() {
  NOTIFYRX_URL="$NOTIFYRX_URL" NOTIFYRX_IP="$NOTIFYRX_IP" NOTIFYRX_PORT="$NOTIFYRX_PORT" NOTIFYRX_RECORD="$NOTIFYRX_RECORD" \
  NOTIFYRX_FAULTS="$NOTIFYRX_FAULTS" NOTIFYRX_PIDFILE="$NOTIFYRX_PIDFILE" NOTIFYRX_WEBHOOK_KEY="$NOTIFYRX_WEBHOOK_KEY" \
  NOTIFYRX_WEBHOOK_URL_FILE="$NOTIFYRX_WEBHOOK_URL_FILE" NOTIFYRX_SLACK_URL_FILE="$NOTIFYRX_SLACK_URL_FILE" \
  NOTIFYRX_PD_KEY="$NOTIFYRX_PD_KEY" NOTIFYRX_PD_URL_FILE="$NOTIFYRX_PD_URL_FILE" \
  node -e 'const e = process.env; process.stdout.write(JSON.stringify({
    notifyrx: { url: e.NOTIFYRX_URL, host: e.NOTIFYRX_IP, port: +e.NOTIFYRX_PORT, deliveries: e.NOTIFYRX_RECORD, faults: e.NOTIFYRX_FAULTS,
      pidfile: e.NOTIFYRX_PIDFILE, webhookKeyFile: e.NOTIFYRX_WEBHOOK_KEY, webhookUrlFile: e.NOTIFYRX_WEBHOOK_URL_FILE,
      slackUrlFile: e.NOTIFYRX_SLACK_URL_FILE, pagerdutyKeyFile: e.NOTIFYRX_PD_KEY, pagerdutyUrlFile: e.NOTIFYRX_PD_URL_FILE },
  }))'
}
