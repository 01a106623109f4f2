#!/usr/bin/env python3
"""An outside verifier of an oretrail server's log API, written from the
specifications alone (RFC 9162 section 2.1, C2SP tlog-checkpoint and
signed-note, schemas/ENCODING.md), with nothing but the Python 3.11
standard library. It shares no code with the Rust implementation, so a
mistake in one is caught by the other.

    python3 tests/log_verifier.py URL [--token T [--auditor]] [--state FILE] [--samples K]
    python3 tests/log_verifier.py --self-test DIR

What it checks against a running server at URL:

1. `GET /v1/log/key`: the verifier key line `<name>+<key id hex>+<base64(0x01
   || public key)>`; the key id must be the first 4 bytes of
   SHA-256(name || 0x0A || 0x01 || public key) (C2SP signed-note).
2. `GET /v1/checkpoint`: a C2SP signed note whose body is the three
   tlog-checkpoint lines (origin, size, base64 root); the origin must be the
   key's name, and a signature line must carry that name and key id.
3. `GET /v1/entries?start=S&end=E`, page by page (at most 1000 each): every
   leaf hash of the checkpoint's tree; the RFC 9162 root recomputed from
   them must be the checkpoint's root. Where the server shows the entry
   bytes (`leaf`), each leaf hash must be SHA-256(0x00 || leaf), and the
   bytes must start with the `oretrail.entry` prefix, their own index and
   the leaf hash of the entry before (the hash chain, ENCODING.md 3.5).
   The public sees no entry bytes; a participant's token shows the entries
   it may see; with `--auditor` (the token is an auditor's or the
   operator's) every entry's bytes must be shown.
4. `GET /v1/proofs/inclusion`: for a deterministic sample of indices (the
   first, the last, power-of-two edges and evenly spaced ones), checked
   with the algorithm of RFC 9162 section 2.1.3.2 against the root.
5. `GET /v1/proofs/consistency`: from several earlier sizes to the
   checkpoint's, checked with RFC 9162 section 2.1.4.2 against roots
   recomputed from the leaf hashes; with `--state FILE`, also from the size
   and root this script verified last time (kept in FILE), which shows the
   log only grew since.

What it does NOT check: the Ed25519 signature of the checkpoint. Ed25519 is
not in the Python standard library and this script installs nothing; it
checks that a signature line names the key and carries 4 + 64 bytes, and
leaves the signature itself to `oretrail verify` (or any Ed25519 library).
Nor does it re-apply the business rules or decode events.

Exit status: 0 when everything checks (one summary line on stdout), 1 when
the log's answers are wrong or inconsistent (the problem is named on
stderr), 2 for bad usage or a server that cannot be reached.

`--self-test DIR` runs this script's proof verifiers over the RFC 9162 test
vectors in DIR (tests/data/rfc6962-merkle): every case must be accepted
exactly when its `wantErr` is false.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# The server answers at most this many entries per page (issue 4, "Log API").
PAGE = 1000
HASH_LEN = 32
# RFC 9162 section 2.1.1: the prefixes that separate leaves from nodes.
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
# C2SP signed-note: the signature type byte of Ed25519 keys.
ED25519_TYPE = 0x01
ED25519_SIG_LEN = 64
# schemas/ENCODING.md 2.1 and 3.5: an entry starts with its 16-byte tag and
# u16 LE version, then its u64 LE index and the previous entry's leaf hash.
ENTRY_PREFIX = b"oretrail.entry".ljust(16, b"\x00") + (1).to_bytes(2, "little")
TIMEOUT_S = 30


class Invalid(Exception):
    """The log's answers are wrong: verification failed (exit 1)."""


class Unreachable(Exception):
    """The server could not be asked (exit 2)."""


# ---------------------------------------------------------------- hashing


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 9162 section 2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    return sha256(LEAF_PREFIX + leaf)


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 section 2.1.1: SHA-256(0x01 || left || right)."""
    return sha256(NODE_PREFIX + left + right)


def roots_at(leaves: list[bytes], sizes: set[int]) -> dict[int, bytes]:
    """The RFC 9162 tree head MTH(D[0:n]) for every n in `sizes`, in one
    pass over the leaf hashes.

    The tree of n leaves is the perfect subtrees of n's binary digits, from
    the largest on the left; RFC 9162's recursive definition (split at the
    largest power of two below n) folds them from the right. `stack` holds
    those subtrees' roots as leaves arrive.
    """
    roots: dict[int, bytes] = {}
    if 0 in sizes:
        roots[0] = sha256(b"")
    stack: list[bytes] = []
    for i, h in enumerate(leaves):
        node = h
        n = i
        # A new leaf completes one subtree per trailing one bit of i.
        while n & 1:
            node = node_hash(stack.pop(), node)
            n >>= 1
        stack.append(node)
        size = i + 1
        if size in sizes:
            root = stack[-1]
            for left in reversed(stack[:-1]):
                root = node_hash(left, root)
            roots[size] = root
    return roots


# ------------------------------------------------- RFC 9162 verification


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> None:
    """RFC 9162 section 2.1.3.2; raises Invalid when the proof fails."""
    if any(len(h) != HASH_LEN for h in [leaf, root, *proof]):
        raise Invalid("a hash in the inclusion proof is not 32 bytes")
    # Step 1.
    if index >= size:
        raise Invalid(f"leaf index {index} is not below tree size {size}")
    # Steps 2 and 3.
    fn, sn, r = index, size - 1, leaf
    # Step 4.
    for p in proof:
        if sn == 0:
            raise Invalid("the inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # Step 5.
    if sn != 0:
        raise Invalid("the inclusion proof is shorter than the path to the root")
    if r != root:
        raise Invalid("the inclusion proof leads to a different root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2; raises Invalid when the proof fails.

    The RFC's algorithm starts from a non-empty proof. Its section 2.1.4.1
    fixes the edges it leaves out: equal sizes have an empty proof (and so
    must have equal roots), and no proof exists from the empty tree or to a
    smaller one.
    """
    if any(len(h) != HASH_LEN for h in proof):
        raise Invalid("a hash in the consistency proof is not 32 bytes")
    if first == 0:
        raise Invalid("there is no consistency proof from the empty tree")
    if first > second:
        raise Invalid(f"first size {first} is larger than second size {second}")
    if first == second:
        if proof:
            raise Invalid("a consistency proof between equal sizes must be empty")
        if first_root != second_root:
            raise Invalid("equal tree sizes with different roots")
        return
    # Past equal sizes the roots enter the hashing, so they must be
    # SHA-256 digests; with equal sizes they are only compared.
    if len(first_root) != HASH_LEN or len(second_root) != HASH_LEN:
        raise Invalid("a root is not 32 bytes")
    # Step 1.
    if not proof:
        raise Invalid("the consistency proof is empty")
    path = list(proof)
    # Step 2: a power-of-two first tree is itself a node of the second.
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    # Step 3.
    fn, sn = first - 1, second - 1
    # Step 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise Invalid("the consistency proof is longer than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise Invalid("the consistency proof is shorter than needed")
    if fr != first_root:
        raise Invalid(f"the consistency proof does not lead to the root at size {first}")
    if sr != second_root:
        raise Invalid(f"the consistency proof does not lead to the root at size {second}")


# ----------------------------------------------------- C2SP formats


def b64decode(text: str, what: str) -> bytes:
    """Standard base64 with padding (RFC 4648 section 4), strictly."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise Invalid(f"{what} is not standard base64: {e}") from None


def hash_from_b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise Invalid(f"{what} is not a string")
    h = b64decode(text, what)
    if len(h) != HASH_LEN:
        raise Invalid(f"{what} is {len(h)} bytes, not {HASH_LEN}")
    return h


def key_id(name: str, public_key: bytes) -> bytes:
    """C2SP signed-note: SHA-256(name || 0x0A || type || key)[:4]."""
    return sha256(name.encode() + b"\n" + bytes([ED25519_TYPE]) + public_key)[:4]


class VerifierKey:
    def __init__(self, line: str) -> None:
        """Parses `<name>+<key id hex>+<base64(0x01 || key)>` and checks the
        key id against the name and key."""
        parts = line.strip("\n").split("+")
        if len(parts) != 3:
            raise Invalid(f"the key line has {len(parts)} '+'-separated fields, not 3")
        self.name, id_hex, key_b64 = parts
        if not self.name:
            raise Invalid("the key line has an empty key name")
        try:
            self.id = bytes.fromhex(id_hex)
        except ValueError:
            raise Invalid(f"the key line's key id {id_hex!r} is not hex") from None
        if len(self.id) != 4 or id_hex != id_hex.lower():
            raise Invalid(f"the key line's key id {id_hex!r} is not 8 lowercase hex digits")
        typed = b64decode(key_b64, "the key line's key")
        if len(typed) != 1 + 32 or typed[0] != ED25519_TYPE:
            raise Invalid("the key line's key is not 0x01 followed by a 32-byte Ed25519 key")
        self.public_key = typed[1:]
        expected = key_id(self.name, self.public_key)
        if expected != self.id:
            raise Invalid(
                f"the key line's key id {self.id.hex()} is not the id of its name and key "
                f"({expected.hex()})"
            )


class Checkpoint:
    def __init__(self, note: str, key: VerifierKey) -> None:
        """Parses a C2SP signed note holding a tlog-checkpoint, and finds
        the signature line of `key` (name and key id)."""
        if any(ord(c) < 0x20 and c != "\n" for c in note):
            raise Invalid("the checkpoint note holds a control character other than newline")
        cut = note.rfind("\n\n")
        if cut < 0:
            raise Invalid("the checkpoint note has no blank line before its signatures")
        body, signatures = note[: cut + 1], note[cut + 2 :]
        if not signatures.endswith("\n"):
            raise Invalid("the checkpoint note does not end in a newline")
        lines = body.split("\n")[:-1]
        if len(lines) != 3:
            raise Invalid(f"the checkpoint body has {len(lines)} lines, not 3 (origin, size, root)")
        self.origin, size, root = lines
        if not size.isdigit() or (size != "0" and size.startswith("0")):
            raise Invalid(f"the checkpoint size {size!r} is not a decimal number")
        self.size = int(size)
        self.root = hash_from_b64(root, "the checkpoint root")
        if self.origin != key.name:
            raise Invalid(
                f"the checkpoint origin {self.origin!r} is not the log key's name {key.name!r}"
            )
        matching = 0
        for line in signatures.split("\n")[:-1]:
            if not line.startswith("\u2014 "):
                raise Invalid(f"checkpoint signature line {line!r} does not start with an em dash")
            fields = line[2:].split(" ")
            if len(fields) != 2:
                raise Invalid(f"checkpoint signature line {line!r} is not '— name signature'")
            name, blob = fields
            blob = b64decode(blob, "a checkpoint signature")
            if name != key.name or blob[:4] != key.id:
                continue  # a cosigner's line: not ours to judge
            if len(blob) != 4 + ED25519_SIG_LEN:
                raise Invalid(
                    f"the log key's signature is {len(blob) - 4} bytes, not {ED25519_SIG_LEN}"
                )
            matching += 1
        if matching == 0:
            raise Invalid(
                f"no checkpoint signature line carries the log key "
                f"(name {key.name}, key id {key.id.hex()})"
            )
        self.body = body


# ----------------------------------------------------------- the server


class Server:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self.requests = 0

    def get(self, path: str) -> bytes:
        url = self.base + path
        request = urllib.request.Request(url)
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token}")
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                return answer.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace").strip()
            try:
                error = json.loads(detail)
                detail = f"{error.get('code')}: {error.get('message')}"
            except (ValueError, AttributeError):
                pass
            raise Invalid(f"GET {path} answered HTTP {e.code} ({detail})") from None
        except (urllib.error.URLError, OSError) as e:
            raise Unreachable(f"GET {url}: {getattr(e, 'reason', e)}") from None

    def text(self, path: str) -> str:
        try:
            return self.get(path).decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(f"GET {path} did not answer UTF-8 text") from None

    def json(self, path: str) -> dict:
        try:
            value = json.loads(self.get(path))
        except ValueError as e:
            raise Invalid(f"GET {path} did not answer JSON: {e}") from None
        if not isinstance(value, dict):
            raise Invalid(f"GET {path} did not answer a JSON object")
        return value

    def proof(self, path: str, echo: dict[str, int]) -> list[bytes]:
        """A proof answer: its echoed parameters must be the ones asked."""
        answer = self.json(path)
        for name, value in echo.items():
            if answer.get(name) != value:
                raise Invalid(f"GET {path} answered {name}={answer.get(name)!r}, not {value}")
        proof = answer.get("proof")
        if not isinstance(proof, list):
            raise Invalid(f"GET {path} answered no proof list")
        return [hash_from_b64(h, f"element {i} of the proof of GET {path}") for i, h in enumerate(proof)]


def fetch_leaves(server: Server, size: int, all_bytes: bool) -> tuple[list[bytes], int]:
    """Every leaf hash of the tree of `size` entries, page by page; where
    the entry bytes are shown, they are re-hashed and their prefix, index
    and chain link checked. Returns the leaf hashes and how many entries'
    bytes were checked."""
    leaves: list[bytes] = []
    checked = 0
    while len(leaves) < size:
        start = len(leaves)
        end = min(start + PAGE, size)
        path = f"/v1/entries?start={start}&end={end}"
        entries = server.json(path).get("entries")
        if not isinstance(entries, list) or not entries:
            raise Invalid(f"GET {path} answered no entries")
        if len(entries) > end - start:
            raise Invalid(f"GET {path} answered {len(entries)} entries, more than asked")
        for item in entries:
            index = len(leaves)
            if not isinstance(item, dict) or item.get("index") != index:
                got = item.get("index") if isinstance(item, dict) else item
                raise Invalid(f"GET {path} answered entry {got!r} where entry {index} belongs")
            h = hash_from_b64(item.get("leaf_hash"), f"the leaf hash of entry {index}")
            if "leaf" in item:
                leaf = b64decode(item["leaf"] or "", f"the bytes of entry {index}")
                if leaf_hash(leaf) != h:
                    raise Invalid(
                        f"entry {index}: the leaf hash is not SHA-256(0x00 || leaf bytes)"
                    )
                check_entry_bytes(index, leaf, leaves[-1] if leaves else bytes(HASH_LEN))
                checked += 1
            elif all_bytes:
                raise Invalid(
                    f"entry {index}: no leaf bytes shown to the auditor's token "
                    f"(is it an auditor's or the operator's?)"
                )
            leaves.append(h)
    return leaves, checked


def check_entry_bytes(index: int, leaf: bytes, prev: bytes) -> None:
    """schemas/ENCODING.md 3.5: tag and version, then the u64 LE index and
    the leaf hash of the entry before (zeros for entry 0)."""
    if leaf[:18] != ENTRY_PREFIX:
        raise Invalid(f"entry {index}: the bytes do not start with the oretrail.entry v1 prefix")
    if len(leaf) < 58:
        raise Invalid(f"entry {index}: the bytes are too short for an entry")
    own = int.from_bytes(leaf[18:26], "little")
    if own != index:
        raise Invalid(f"entry {index}: the bytes say index {own}")
    if leaf[26:58] != prev:
        raise Invalid(f"entry {index}: the bytes do not link to the leaf hash of entry {index - 1}")


def inclusion_sample(size: int, count: int) -> list[int]:
    """Deterministic indices: the first and last, the edges of the
    power-of-two subtrees, and `count` evenly spaced ones."""
    picks = {0, size - 1}
    p = 1
    while p < size:
        picks.update({p - 1, p})
        p <<= 1
    if count > 1:
        picks.update((j * (size - 1)) // (count - 1) for j in range(count))
    return sorted(i for i in picks if 0 <= i < size)


def consistency_sample(size: int, count: int) -> list[int]:
    """Deterministic earlier sizes: 1, 2, powers of two and their
    neighbours, the size itself, and `count` evenly spaced ones."""
    picks = {1, 2, size - 1, size}
    p = 4
    while p < size:
        picks.update({p - 1, p, p + 1})
        p <<= 1
    if count > 1:
        picks.update(1 + (j * (size - 1)) // (count - 1) for j in range(count))
    return sorted(m for m in picks if 1 <= m <= size)


def load_state(path: Path | None) -> tuple[int, bytes, str] | None:
    if path is None or not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        return int(state["size"]), hash_from_b64(state["root"], "the saved root"), state["origin"]
    except (ValueError, KeyError, TypeError, Invalid) as e:
        raise Unreachable(f"{path}: not a state file this script wrote: {e}") from None


def save_state(path: Path | None, cp: Checkpoint) -> None:
    if path is None:
        return
    text = json.dumps(
        {"origin": cp.origin, "size": cp.size, "root": base64.b64encode(cp.root).decode()}
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def verify_server(
    server: Server, samples: int, state_file: Path | None, all_bytes: bool
) -> str:
    """Runs every check; returns the summary line or raises."""
    key = VerifierKey(server.text("/v1/log/key"))
    cp = Checkpoint(server.text("/v1/checkpoint"), key)
    previous = load_state(state_file)
    if previous is not None:
        old_size, old_root, old_origin = previous
        if old_origin != cp.origin:
            raise Invalid(f"the state file is for log {old_origin!r}, this log is {cp.origin!r}")
        if old_size > cp.size:
            raise Invalid(
                f"the log shrank: it had {old_size} entries when last verified, now {cp.size}"
            )

    leaves, bytes_checked = fetch_leaves(server, cp.size, all_bytes)
    earlier = consistency_sample(cp.size, samples) if cp.size else []
    wanted = set(earlier) | {cp.size}
    if previous is not None:
        wanted.add(previous[0])
    roots = roots_at(leaves, wanted)
    if roots[cp.size] != cp.root:
        raise Invalid(
            f"the root recomputed from the {cp.size} leaf hashes is not the checkpoint's root"
        )

    indices = inclusion_sample(cp.size, samples) if cp.size else []
    for i in indices:
        path = f"/v1/proofs/inclusion?index={i}&tree_size={cp.size}"
        proof = server.proof(path, {"index": i, "tree_size": cp.size})
        try:
            verify_inclusion(i, cp.size, leaves[i], proof, cp.root)
        except Invalid as e:
            raise Invalid(f"inclusion proof of entry {i} in tree size {cp.size}: {e}") from None

    def check_consistency(m: int, m_root: bytes, why: str) -> None:
        path = f"/v1/proofs/consistency?first={m}&second={cp.size}"
        proof = server.proof(path, {"first": m, "second": cp.size})
        try:
            verify_consistency(m, cp.size, m_root, cp.root, proof)
        except Invalid as e:
            raise Invalid(f"consistency proof from size {m}{why} to {cp.size}: {e}") from None

    for m in earlier:
        check_consistency(m, roots[m], "")
    grew = ""
    if previous is not None:
        old_size, old_root, _ = previous
        if roots[old_size] != old_root:
            raise Invalid(
                f"the first {old_size} leaf hashes no longer give the root verified last time"
            )
        check_consistency(old_size, old_root, " (verified last time)")
        grew = f"; grew from {old_size} (last verified) consistently"
    save_state(state_file, cp)

    if bytes_checked == cp.size and cp.size:
        leaf_note = f"all {bytes_checked} entries re-hashed from their bytes and chain-linked"
    elif bytes_checked:
        leaf_note = (
            f"{bytes_checked} of {cp.size} entries (those shown to this token) re-hashed "
            f"from their bytes and chain-linked"
        )
    elif server.token is None:
        leaf_note = "entry bytes not shown (public view)"
    else:
        leaf_note = "no entry bytes shown to this token"
    return (
        f"log verified: {cp.origin} size {cp.size} root {base64.b64encode(cp.root).decode()}, "
        f"key id {key.id.hex()}; root recomputed from {len(leaves)} leaf hashes; {leaf_note}; "
        f"{len(indices)} inclusion and {len(earlier) + (previous is not None)} consistency "
        f"proofs (RFC 9162){grew}; checkpoint signature NOT checked (no Ed25519 in the "
        f"Python standard library: use `oretrail verify`)"
    )


# --------------------------------------------------------- vector self-test


def self_test(folder: Path) -> str:
    """Every RFC 9162 inclusion and consistency vector must be accepted
    exactly when its wantErr is false."""
    cases = 0
    for kind in ("inclusion", "consistency"):
        files = sorted((folder / kind).rglob("*.json"))
        if not files:
            raise Invalid(f"no {kind} vectors under {folder / kind}")
        for file in files:
            case = json.loads(file.read_text())
            proof = [base64.b64decode(p) for p in case["proof"] or []]
            try:
                if kind == "inclusion":
                    verify_inclusion(
                        case["leafIdx"],
                        case["treeSize"],
                        base64.b64decode(case["leafHash"] or ""),
                        proof,
                        base64.b64decode(case["root"] or ""),
                    )
                else:
                    verify_consistency(
                        case["size1"],
                        case["size2"],
                        base64.b64decode(case["root1"] or ""),
                        base64.b64decode(case["root2"] or ""),
                        proof,
                    )
                accepted, reason = True, ""
            except Invalid as e:
                accepted, reason = False, str(e)
            if accepted == case["wantErr"]:
                what = "accepted" if accepted else f"rejected ({reason})"
                raise Invalid(f"vector {file.relative_to(folder)} was {what}: {case['desc']}")
            cases += 1
    return f"self-test: {cases} RFC 9162 vector cases behave as the vectors say"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Verify an oretrail server's log API from outside (RFC 9162, C2SP)."
    )
    parser.add_argument("url", nargs="?", help="base URL of the server, e.g. http://127.0.0.1:8080")
    parser.add_argument(
        "--token", help="bearer token, sent as 'Authorization: Bearer TOKEN': shows entry bytes"
    )
    parser.add_argument(
        "--auditor",
        action="store_true",
        help="the token is an auditor's or the operator's: every entry's bytes must be shown",
    )
    parser.add_argument(
        "--state",
        type=Path,
        help="file remembering the last verified size and root; the next run proves the "
        "log only grew since",
    )
    parser.add_argument(
        "--samples", type=int, default=16, help="evenly spaced proofs of each kind (default 16)"
    )
    parser.add_argument(
        "--self-test", type=Path, metavar="DIR", help="run the RFC 9162 vectors in DIR instead"
    )
    args = parser.parse_args(argv)
    try:
        if args.self_test is not None:
            print(self_test(args.self_test))
            return 0
        if not args.url:
            parser.error("a base URL is needed (or --self-test DIR)")
        if args.auditor and args.token is None:
            parser.error("--auditor needs --token")
        if not args.url.startswith(("http://", "https://")):
            parser.error(f"{args.url}: the URL must start with http:// or https://")
        server = Server(args.url, args.token)
        print(verify_server(server, max(args.samples, 2), args.state, args.auditor))
        return 0
    except Invalid as e:
        print(f"log_verifier: FAILED: {e}", file=sys.stderr)
        return 1
    except Unreachable as e:
        print(f"log_verifier: cannot check: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
