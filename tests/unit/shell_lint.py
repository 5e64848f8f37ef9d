"""Where ``set -e`` would not stop a script: a small shell tokenizer that finds hidden failures.

Under ``set -e`` a failing command does not stop the script when it is the
head of an ``a && b`` list, or anywhere inside a compound command that is
itself part of an ``&&``/``||`` list, or behind ``!``. So the rendered
scripts keep to plain commands and explicit conditions:

- ``&&`` only inside an ``if``/``elif``/``while``/``until`` condition;
- ``||`` only inside such a condition, or in a deliberate form: ``|| true``,
  ``|| :``, ``|| return [N]``, ``|| exit [N]``, ``|| _name=$?``; and the
  last three only after a simple command (a compound before them would
  hide its inner failures);
- ``!`` only inside a condition.

``hidden_failures(script)`` lists each offence with the text around it.
"""

from __future__ import annotations

import re
import shlex

OPERATORS = ("&&", "||", ";;", ">>", "<<", ">&", "<&", "&", ";", "|", "(", ")", "<", ">", "\n")
SEPARATORS = {"&&", "||", ";", "|", "&", "\n", ";;"}
OPENERS = {"if", "while", "until", "for", "case", "{", "("}
CLOSERS = {"fi", "done", "esac", "}", ")"}
CONDITION_START = {"if", "elif", "while", "until"}
CONDITION_END = {"then", "do"}
KEYWORDS_THEN_COMMAND = {"then", "do", "else", "elif", "if", "while", "until", "!", "{"}
DELIBERATE = re.compile(r"^(true|:|return|exit|_[A-Za-z0-9_]*=\$\?)$")
ANY_COMPOUND_OK = {"true", ":"}


def _split(token: str) -> list[str]:
    """A run of punctuation shlex returned as one token, as shell operators."""
    out, i = [], 0
    while i < len(token):
        for op in OPERATORS:
            if token.startswith(op, i):
                out.append(op)
                i += len(op)
                break
        else:
            out.append(token[i])
            i += 1
    return out


def tokens(script: str) -> list[str]:
    lex = shlex.shlex(script, posix=True, punctuation_chars=";&|()<>\n")
    lex.whitespace = " \t\r"
    lex.whitespace_split = True
    out: list[str] = []
    for token in lex:
        if token and all(c in ";&|()<>\n" for c in token):
            out.extend(_split(token))
        else:
            out.append(token)
    return out


def hidden_failures(script: str) -> list[str]:
    toks = tokens(script)
    problems: list[str] = []
    conditions: list[str] = []  # open if/while conditions
    frames: list[str] = []  # what each open ( { if while case ... started
    case_state: list[str] = []  # per open case: "pattern" or "body"
    heads: list[str] = []  # the first token of the command being read, per nesting level
    at_start = True
    head = ""

    def context(i: int) -> str:
        return " ".join(t if t != "\n" else "\\n" for t in toks[max(0, i - 6): i + 4])

    i = 0
    while i < len(toks):
        t = toks[i]
        prev = toks[i - 1] if i else ""
        if case_state and case_state[-1] == "pattern":
            if t == "esac":
                case_state.pop()
                frames.pop()
                at_start = False
            elif t == ")":
                case_state[-1] = "body"
                at_start = True
            i += 1
            continue
        if at_start and t in CONDITION_START:
            if t != "elif":
                frames.append(t)
            conditions.append(t)
            head = head or t
            at_start = True
        elif at_start and t in CONDITION_END and conditions:
            conditions.pop()
            at_start = True
        elif at_start and t in ("else",):
            at_start = True
        elif at_start and t == "case":
            frames.append("case")
            head = head or t
            at_start = False
        elif t == "in" and frames and frames[-1] == "case" and (not case_state or len(case_state) < frames.count("case")):
            case_state.append("pattern")
        elif t == ";;" and case_state:
            case_state[-1] = "pattern"
        elif t == "(" and prev.endswith("$"):
            frames.append("$(")  # a command substitution: part of the word before it
            heads.append(head)
            head, at_start = "", True
        elif t == "(" and prev and not at_start and not prev.endswith("$"):
            frames.append("fn")  # name() {
            i += 2 if i + 1 < len(toks) and toks[i + 1] == ")" else 1
            frames.pop()
            at_start = True
            continue
        elif at_start and t in ("(", "{"):
            frames.append(t)
            heads.append(head or t)
            head, at_start = "", True
        elif t in CLOSERS and frames and (t != ")" or frames[-1] in ("(", "$(")) and (at_start or t == ")"):
            opened = frames.pop()
            if opened in ("(", "$(", "{"):
                head = heads.pop() if heads else ""
            at_start = False
        elif at_start and t == "!":
            if not conditions:
                problems.append(f"'!' outside a condition: ... {context(i)} ...")
            at_start = True
        elif t == "&&":
            if not conditions:
                problems.append(f"'&&' outside a condition: ... {context(i)} ...")
            head, at_start = "", True
        elif t == "||":
            if not conditions:
                nxt = toks[i + 1] if i + 1 < len(toks) else ""
                compound = head in OPENERS or prev in CLOSERS
                if not DELIBERATE.match(nxt):
                    problems.append(f"'||' outside a condition: ... {context(i)} ...")
                elif compound and nxt not in ANY_COMPOUND_OK:
                    problems.append(f"'|| {nxt}' after a compound command hides its failures: ... {context(i)} ...")
            head, at_start = "", True
        elif t in SEPARATORS:
            head, at_start = "", True
        else:
            if at_start:
                head = head or t
            at_start = t in KEYWORDS_THEN_COMMAND
        i += 1
    return problems
