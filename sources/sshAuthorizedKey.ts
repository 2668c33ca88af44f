/**
 * An SSH key in an authorized_keys file on a host of the inventory: the grant
 * appends the new public key (tagged `rotation:<secret>:g<N>`), the
 * revocation removes the old one's line, the verification logs in with each
 * private key as `loginUser`.
 */
import { z } from "zod";
import { absPath, type HostConnection, hostRef, unixUser } from "../lib/fields";
import { shq } from "../lib/quote";
import { pinnedKnownHosts, preamble } from "../lib/scripts/common";
import { defineSource } from "./kind";

const schema = z.strictObject({
    kind: z.literal("ssh-authorized-key"),
    /** The host (of rotation:hosts) whose authorized_keys file the rotation edits. */
    host: hostRef,
    /** The authorized_keys file on the target whose lines the rotation edits. */
    authorizedKeysFile: absPath,
    /** The account the rotated key logs into (what consumers use). */
    loginUser: unixUser,
});

/** The source with its host expanded: the scripts run there over SSH. */
export type AuthorizedKeySource = HostConnection & { kind: "ssh-authorized-key"; authorizedKeysFile: string; loginUser: string };

export const sshAuthorizedKey = defineSource<typeof schema, AuthorizedKeySource>({
    kind: "ssh-authorized-key",
    schema,
    types: ["ssh-key"],
    hostRefs: (written) => [written.host],
    expand: (written, hostOf) => ({
        kind: written.kind,
        ...hostOf(written.host),
        authorizedKeysFile: written.authorizedKeysFile,
        loginUser: written.loginUser,
    }),
    resolve: (_src, written, on) => ({ hostKey: on.hostKey(written.host) }),
    scripts(src, g, hostKey = "") {
        const file = shq(src.authorizedKeysFile);
        const drop = (v: string) => `blob=$(printf '%s' "$${v}" | awk '{print $2}')
[ -n "$blob" ] || fail "no public key on stdin"
[ -f ${file} ] || exit 0
tmp=$(mktemp ${shq(`${src.authorizedKeysFile}.XXXXXX`)})
awk -v b="$blob" '{keep=1; for (i = 1; i <= NF; i++) if ($i == b) keep=0; if (keep) print}' ${file} > "$tmp"
chmod --reference=${file} "$tmp"; chown --reference=${file} "$tmp" 2>/dev/null || true
mv -f -- "$tmp" ${file}
`;
        return {
            target: { kind: "ssh", host: src.host, port: src.port, user: src.user, hostKey, privateKeyFile: src.privateKeyFile },
            grant: `${preamble("PUB")}blob=$(printf '%s' "$PUB" | awk '{print $2}')
[ -n "$blob" ] || fail "no public key on stdin"
touch ${file}
if ! awk -v b="$blob" '{for (i = 1; i <= NF; i++) if ($i == b) found=1} END {exit !found}' ${file}; then
  printf '%s %s\\n' "$(printf '%s' "$PUB" | awk '{print $1" "$2}')" ${shq(`rotation:${g.secretName}:g${g.generation}`)} >> ${file}
fi
`,
            withdraw: `${preamble("PUB")}${drop("PUB")}`,
            revoke: `${preamble("PUB")}${drop("PUB")}`,
            verify: `${preamble("OLD", "NEW")}${pinnedKnownHosts("kh", src.host, src.port, hostKey)}account=${shq(`${src.loginUser}@${src.host}`)}
try_login() {
  local d rc=0
  d=$(mktemp -d)
  printf '%s\\n' "$1" > "$d/key"
  chmod 600 "$d/key"
  ssh -n -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$kh" -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10 -o LogLevel=ERROR -i "$d/key" -p ${shq(src.port)} -l ${shq(src.loginUser)} -- ${shq(src.host)} true >/dev/null 2>&1 || rc=$?
  rm -rf -- "$d"
  return $rc
}
try_login "$NEW" || fail "ssh: the new key is rejected by $account"
! try_login "$OLD" || fail "ssh: the old key is still accepted by $account"
echo "ssh: old key rejected, new accepted"
`,
        };
    },
    preflight: (src) => `f=${shq(src.authorizedKeysFile)}
{ [ -f "$f" ] && [ -w "$f" ]; } || [ -w "$(dirname -- "$f")" ] || problem "$f cannot be written on this host"`,
});
