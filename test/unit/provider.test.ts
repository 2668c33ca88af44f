// redact(): what reaches a diagnostic (a failed step's stderr, an error
// message) carries no secret, whole or line by line.
import assert from "node:assert/strict";
import { test } from "node:test";
import { redact } from "../../provider/outcome";

/** Shaped like an OpenSSH ed25519 private key (not a real one). */
const PRIVATE_KEY = [
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    "QyNTUxOQAAACBF1pXnq3T0zVxkq9yY7JgM2c1pXH3k2b4XUQk1e2Yk0AAAAJgq0cQhKtHE",
    "AAAEB5ZmFrZQ==",
    "-----END OPENSSH PRIVATE KEY-----",
    "",
].join("\n");
const LINES = PRIVATE_KEY.split("\n");

test("removes every occurrence of every secret", () => {
    const text = "auth failed for S3cr3t-Redis-pw; retried with S3cr3t-Redis-pw; token tok_9f8e7d6c rejected";
    assert.equal(redact(text, ["S3cr3t-Redis-pw", "tok_9f8e7d6c"]), "auth failed for [secret]; retried with [secret]; token [secret] rejected");
});

test("replaces the longest secret first, so a shorter one inside it leaves no tail", () => {
    const text = "old=abcd new=abcdefgh-9 both=abcdefgh-9abcd";
    assert.equal(redact(text, ["abcd", "abcdefgh-9"]), "old=[secret] new=[secret] both=[secret][secret]");
    assert.equal(redact(text, ["abcdefgh-9", "abcd"]), "old=[secret] new=[secret] both=[secret][secret]", "order of the list does not matter");
});

test("removes a multi-line secret whole, and each of its lines of 8 or more characters on its own", () => {
    assert.equal(redact(`stdin was:\n${PRIVATE_KEY}end`, [PRIVATE_KEY]), "stdin was:\n[secret]end");
    // What runScript shows: the last stderr lines joined with " | ", so the key never appears whole.
    const joined = `Load key "/tmp/k": invalid format | ${LINES[1]} | ${LINES[2]} | ${LINES[4]}`;
    assert.equal(redact(joined, [PRIVATE_KEY]), 'Load key "/tmp/k": invalid format | [secret] | [secret] | [secret]');
    const out = redact(LINES.join(" "), [PRIVATE_KEY]);
    for (const line of LINES.filter((l) => l.length >= 8)) assert.ok(!out.includes(line), `line ${line} redacted`);
    assert.equal(out, "[secret] [secret] [secret] [secret] [secret] ");
});

test("short lines of a multi-line secret are not redacted on their own (they would mask ordinary text)", () => {
    assert.equal(redact("exit 1: abc and the rest", ["abc\nthe-long-part"]), "exit 1: abc and the rest");
    assert.equal(redact("seen: the-long-part", ["abc\nthe-long-part"]), "seen: [secret]");
});

test("values shorter than 4 characters are left alone; 4 are redacted", () => {
    assert.equal(redact("a an abc abcd", ["a", "an", "abc"]), "a an abc abcd");
    assert.equal(redact("a an abc abcd", ["abcd"]), "a an abc [secret]");
    assert.equal(redact("nothing here", []), "nothing here");
    assert.equal(redact("empty secret", [""]), "empty secret");
});

test("secrets are matched literally, not as patterns", () => {
    for (const s of ["a.*b$&c", "(x|y)+[z]", "$1$2$'", "\\d{4}\\s"]) {
        assert.equal(redact(`value=${s} end; a-b-c-d $&`, [s]), "value=[secret] end; a-b-c-d $&", s);
    }
});

test("the user of a postgres credential (second stdin field) is redacted with the password", () => {
    assert.equal(
        redact("FATAL: password authentication failed for user app_g12 (pw Zx9-long-pw)", ["Zx9-long-pw", "app_g12"]),
        "FATAL: password authentication failed for user [secret] (pw [secret])",
    );
});

// A CRLF multi-line secret must be matched line by line without its CRs.
test("a CRLF multi-line secret is also redacted line by line", () => {
    const crlf = PRIVATE_KEY.replace(/\n/g, "\r\n");
    assert.equal(redact(`Load key: ${LINES[1]}: invalid format`, [crlf]), "Load key: [secret]: invalid format");
});
