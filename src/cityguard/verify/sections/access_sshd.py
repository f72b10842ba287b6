"""sshd beyond `sshd -T`: the connections its Match blocks name, and which file sets an option.

`sshd -T` prints the configuration a connection matching no Match block gets; a Match block
(`Match Address 10.0.0.0/8` with `PermitRootLogin yes`) changes it for the connections it names,
which only `sshd -T -C` shows. Two sections:

- `sshd-match`: every Match line of sshd_config and its drop-ins becomes a connection context
  (user, host, address, local address and port taken from the line's first non-negated
  patterns, a member of a named group as the user, documentation values for the rest), and
  `sshd -T -C` is printed for each, after a `@@context` line naming the context and the line;
- `sshd-files`: the text of sshd_config and its drop-ins, so a check can name the file that
  sets the value in force (sshd keeps the first value it reads, Includes expanded in place).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from dataclasses import dataclass, field

from cityguard.verify.facts import SectionError, register_section
from cityguard.verify.sections._common import split_grep

SSHD_CONFIG = "/etc/ssh/sshd_config"
SSHD_DROPINS = "/etc/ssh/sshd_config.d"
# a connection matching no pattern of a block: nobody's user, documentation addresses
DEFAULT_CONTEXT = {"user": "cityguard-probe", "host": "probe.invalid", "addr": "192.0.2.1"}
_CRITERIA = {
    "user": "user",
    "group": "group",
    "host": "host",
    "address": "addr",
    "localaddress": "laddr",
    "localport": "lport",
    "rdomain": "rdomain",
}

# Every Match line -> "spec<TAB>group<TAB>path:line<TAB>text" (awk), then `sshd -T -C` for each
# (a group's first member, or an account whose primary group it is, as the user).
_AWK = r"""
{
  path = $0; sub(/:.*/, "", path); rest = substr($0, length(path) + 2)
  ln = rest; sub(/:.*/, "", ln); text = substr(rest, length(ln) + 2)
  sub(/^[ \t]+/, "", text); sub(/[ \t]+$/, "", text)
  n = split(text, w, /[ \t]+/)
  user = duser; host = dhost; addr = daddr; extra = ""; group = "-"
  for (i = 2; i < n; i += 2) {
    k = tolower(w[i]); m = split(w[i + 1], pats, ","); p = ""
    for (j = 1; j <= m; j++) if (pats[j] !~ /^!/) { p = pats[j]; break }
    if (p == "") continue
    gsub(/[*?]/, "1", p)
    if (k == "address" || k == "localaddress") sub(/\/[0-9]+$/, "", p)
    if (k == "user") user = p
    else if (k == "group") group = p
    else if (k == "host") host = p
    else if (k == "address") addr = p
    else if (k == "localaddress") extra = extra ",laddr=" p
    else if (k == "localport") extra = extra ",lport=" p
    else if (k == "rdomain") extra = extra ",rdomain=" p
  }
  if (tolower(text) ~ /^match[ \t]+all$/) next
  printf "user=%s,host=%s,addr=%s%s\t%s\t%s:%s\t%s\n", user, host, addr, extra,
    group, path, ln, text
}
"""

_LOOP = (
    "while IFS=\"$(printf '\\t')\" read -r spec group where text; do "
    'if [ "$group" != - ]; then '
    'u=$(getent group "$group" | cut -d: -f4 | cut -d, -f1); '
    'if [ -z "$u" ]; then gid=$(getent group "$group" | cut -d: -f3); '
    'u=$(awk -F: -v g="$gid" \'$4 == g && g != "" {print $1; exit}\' /etc/passwd); fi; '
    '[ -n "$u" ] && spec="user=$u,${spec#user=*,}"; fi; '
    'printf \'@@context\\t%s\\t%s\\t%s\\n\' "$spec" "$where" "$text"; '
    'out=$(sshd -T -C "$spec" 2>&1) && printf \'%s\\n\' "$out" '
    "|| { echo '@@fail'; printf '%s\\n' \"$out\" | head -2; }; "
    "done"
)
MATCH_COMMAND = (
    "command -v sshd >/dev/null || { echo '@@error'; echo 'sshd not found'; exit 0; }; "
    f"grep -Hni '^[[:space:]]*match[[:space:]]' {SSHD_CONFIG} {SSHD_DROPINS}/*.conf 2>/dev/null "
    "| awk "
    + " ".join(f"-v d{key}={value}" for key, value in DEFAULT_CONTEXT.items())
    + f" {shlex.quote(_AWK)} | {_LOOP}"
)
FILES_COMMAND = f"grep -H '' {SSHD_CONFIG} {SSHD_DROPINS}/*.conf 2>/dev/null; true"


@dataclass
class MatchContext:
    """The configuration `sshd -T -C` gives the connection a Match line names."""

    spec: str  # the -C argument: user=...,host=...,addr=...
    where: str  # path:line of the Match line
    text: str  # the Match line
    options: dict[str, list[str]] = field(default_factory=dict)
    problem: str | None = None  # sshd -T -C refused the context

    @property
    def label(self) -> str:
        return f"{self.text} ({self.where}; sshd -T -C {self.spec})"

    def option(self, name: str) -> str | None:
        if self.problem is not None:
            raise SectionError(f"sshd -T -C {self.spec} failed: {self.problem}")
        values = self.options.get(name.lower())
        return values[0] if values else None


def parse_match(lines: list[str]) -> list[MatchContext]:
    contexts: list[MatchContext] = []
    for line in lines:
        if line.startswith("@@context\t"):
            _, spec, where, text = [*line.split("\t"), "", "", ""][:4]
            contexts.append(MatchContext(spec, where, text))
        elif not contexts:
            continue
        elif line == "@@fail":
            contexts[-1].problem = ""
        elif contexts[-1].problem is not None:
            contexts[-1].problem = (contexts[-1].problem + " " + line.strip()).strip()
        else:
            key, _, value = line.partition(" ")
            if key:
                contexts[-1].options.setdefault(key.lower(), []).append(value.strip())
    return contexts


_KEYWORD = re.compile(r"^(\S+?)(?:\s*=\s*|\s+)(.*)$")


def first_setting(files: dict[str, list[str]], name: str) -> str | None:
    """`path:line` of the line whose value sshd keeps for `name` outside Match blocks (the first
    it reads, Includes expanded where they stand); None when no file sets it."""
    wanted = name.lower()

    def walk(path: str, depth: int) -> str | None:
        for number, raw in enumerate(files.get(path, []), 1):
            match = _KEYWORD.match(raw.strip())
            if not match or raw.strip().startswith("#"):
                continue
            key, value = match.group(1).lower(), match.group(2).strip()
            if key == "match":
                return None  # what follows belongs to Match blocks, up to the end of the file
            if key == "include" and depth < 16:
                for pattern in value.split():
                    full = (
                        pattern if pattern.startswith("/") else posixpath.join("/etc/ssh", pattern)
                    )
                    for included in sorted(p for p in files if fnmatch.fnmatch(p, full)):
                        found = walk(included, depth + 1)
                        if found:
                            return found
            elif key == wanted:
                return f"{path}:{number}"
        return None

    return walk(SSHD_CONFIG, 0)


register_section("sshd-match", MATCH_COMMAND, parse_match)
register_section("sshd-files", FILES_COMMAND, split_grep)
