"""Cross-check of `imdsguard rules export` against pySigma's own backends.

For every Sigma rule of a corpus and each of KQL (pySigma-backend-kusto, Microsoft XDR pipeline),
SPL (pySigma-backend-splunk, Windows pipeline), EQL and ES|QL (pySigma-backend-elasticsearch,
ECS Windows pipeline), both queries are parsed back into one canonical boolean form:

- atoms are (field, test, value, case-insensitive?): every string test becomes a Sigma-style glob
  (`contains x` -> `*x*`, `endswith x` -> `*x`, `in~ (a, b)` -> `a or b`, SQL/EQL LIKE -> glob),
  values of case-insensitive tests are lower-cased; regexes, CIDR, null/exists, numbers keep
  their own test;
- negations are pushed to the atoms, and/or are flattened, sorted and de-duplicated.

Two queries agree when their canonical forms are equal, or when they are equal as boolean
functions of their atoms (truth table, or 4,096 random assignments above 12 atoms).

Where they do not, pySigma's backend and imdsguard differ on purpose. Each accepted difference is
a rewrite below (ACCEPTED), applied to both sides before comparing again, with the reason and whose
reading of Sigma is right. A rule that still differs is unexplained and fails the check.

Usage: crosscheck.py IMDSGUARD_BINARY RULES_DIR [--report FILE] [--lang kql,spl,eql,esql]
"""

import itertools
import json
import random
import re
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

warnings.filterwarnings("ignore")

from sigma.backends.elasticsearch import EqlBackend, ESQLBackend  # noqa: E402
from sigma.backends.kusto import KustoBackend  # noqa: E402
from sigma.backends.splunk import SplunkBackend  # noqa: E402
from sigma.collection import SigmaCollection  # noqa: E402
from sigma.pipelines.elasticsearch.windows import ecs_windows  # noqa: E402
from sigma.pipelines.microsoftxdr import microsoft_xdr_pipeline  # noqa: E402
from sigma.pipelines.splunk import splunk_windows_pipeline  # noqa: E402

BACKENDS = {
    "kql": lambda: KustoBackend(microsoft_xdr_pipeline()),
    "spl": lambda: SplunkBackend(splunk_windows_pipeline()),
    "eql": lambda: EqlBackend(ecs_windows()),
    "esql": lambda: ESQLBackend(ecs_windows()),
}


class ParseError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Tokens shared by the four languages.

TOKEN = re.compile(
    r'''
    (?P<ws>\s+)
  | (?P<tstr>"""(?:.|\n)*?""")
  | (?P<vstr>@"(?:[^"]|"")*")
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<sstr>'(?:[^'\\]|\\.)*')
  | (?P<num>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<op>=~|!~|==|!=|<=|>=|=|<|>|:|\(|\)|,|\||\*)
  | (?P<word>[?@]?[A-Za-z_][\w.\-@]*~?|`[^`]*`)
    ''',
    re.X,
)


def unquote(kind, text):
    if kind == "tstr":
        return text[3:-3]
    if kind == "vstr":
        return text[2:-1].replace('""', '"')
    body = text[1:-1]
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r"}.get(n, n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokens(text):
    out, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise ParseError(f"cannot read {text[pos:pos + 30]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        t = m.group()
        if kind == "sstr":
            # Single quotes name a field in SPL's eval; no backend writes them as strings.
            out.append(("word", unquote(kind, t), t))
        elif kind in ("tstr", "vstr", "str"):
            out.append(("str", unquote(kind, t), t))
        elif kind == "num":
            out.append(("num", t, t))
        elif kind == "op":
            out.append(("op", t, t))
        else:
            out.append(("word", t, t))
    out.append(("end", "", ""))
    return out


class Stream:
    def __init__(self, toks):
        self.t, self.i = toks, 0

    def peek(self, k=0):
        return self.t[min(self.i + k, len(self.t) - 1)]

    def next(self):
        t = self.peek()
        self.i += 1
        return t

    def is_word(self, *words, k=0):
        kind, v, _ = self.peek(k)
        return kind == "word" and v.lower() in words

    def is_op(self, *ops, k=0):
        kind, v, _ = self.peek(k)
        return kind == "op" and v in ops

    def expect_op(self, op):
        if not self.is_op(op):
            raise ParseError(f"expected {op!r}, found {self.peek()[2]!r}")
        self.next()

    def value(self):
        kind, v, raw = self.next()
        if kind not in ("str", "num"):
            raise ParseError(f"expected a value, found {raw!r}")
        return v

    def values(self):
        self.expect_op("(")
        vals = [self.value()]
        while self.is_op(","):
            self.next()
            vals.append(self.value())
        self.expect_op(")")
        return vals


# ---------------------------------------------------------------------------------------------
# Canonical form: ("and", items) / ("or", items) / ("not", x) / ("atom", ...) / ("const", bool).


def esc_glob(s):
    return re.sub(r"([*?\\])", r"\\\1", s)


def atom(field, test, value, ci):
    field = field.lower().strip("`")
    if ci and isinstance(value, str):
        value = value.lower()
    return ("atom", field, test, value, ci)


def glob(field, pattern, ci):
    return atom(field, "glob", pattern, ci)


def lit(field, kind, v, ci):
    e = esc_glob(v)
    return glob(field, {"eq": e, "contains": f"*{e}*", "prefix": f"{e}*", "suffix": f"*{e}"}[kind], ci)


def like_glob(v, star="*", one="?", escape="\\"):
    """A LIKE/wildcard pattern (with its own wildcard and escape characters) as a Sigma glob."""
    out, i = [], 0
    while i < len(v):
        c = v[i]
        if escape and c == escape and i + 1 < len(v):
            out.append(esc_glob(v[i + 1]))
            i += 2
            continue
        out.append("*" if c == star else "?" if c == one else esc_glob(c))
        i += 1
    return "".join(out)


def any_of(items):
    return ("or", tuple(items)) if len(items) != 1 else items[0]


def all_of(items):
    return ("and", tuple(items)) if len(items) != 1 else items[0]


def nnf(x, neg=False):
    k = x[0]
    if k == "not":
        return nnf(x[1], not neg)
    if k in ("and", "or"):
        kk = k if not neg else ("or" if k == "and" else "and")
        return (kk, tuple(nnf(i, neg) for i in x[1]))
    if k == "const":
        return ("const", x[1] != neg)
    return ("not", x) if neg else x


def canon(x):
    """Flatten, fold constants, de-duplicate, sort."""
    k = x[0]
    if k not in ("and", "or"):
        return x
    items = []
    for i in x[1]:
        i = canon(i)
        if i[0] == k:
            items.extend(i[1])
        else:
            items.append(i)
    unit = k == "and"
    out = []
    for i in items:
        if i == ("const", unit) or i == ("drop",):
            continue
        if i == ("const", not unit):
            return i
        out.append(i)
    out = sorted(set(out), key=repr)
    if not out:
        return ("const", unit)
    return out[0] if len(out) == 1 else (k, tuple(out))


def atoms_of(x, acc):
    if x[0] == "atom":
        acc.add(x)
    elif x[0] == "not":
        atoms_of(x[1], acc)
    elif x[0] in ("and", "or"):
        for i in x[1]:
            atoms_of(i, acc)
    return acc


def atom_diff(mine, pys):
    """The tests only one side has (the report shows them beside a difference)."""
    a, b = atoms_of(mine, set()), atoms_of(pys, set())
    return sorted(a - b, key=repr), sorted(b - a, key=repr)


def evaluate(x, env):
    k = x[0]
    if k == "atom":
        return env[x]
    if k == "not":
        return not evaluate(x[1], env)
    if k == "const":
        return x[1]
    if k == "and":
        return all(evaluate(i, env) for i in x[1])
    return any(evaluate(i, env) for i in x[1])


def same_function(a, b):
    atoms = sorted(atoms_of(a, set()) | atoms_of(b, set()), key=repr)
    n = len(atoms)
    if n <= 12:
        assignments = itertools.product((False, True), repeat=n)
    else:
        rnd = random.Random(n)
        assignments = ([rnd.random() < 0.5 for _ in atoms] for _ in range(4096))
    for vals in assignments:
        env = dict(zip(atoms, vals))
        if evaluate(a, env) != evaluate(b, env):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Boolean expression parser shared by the languages; `atom_fn` reads one test.


def parse_bool(s, atom_fn, implicit_and=False, not_words=("not",)):
    """and binds tighter than or, except in SPL's search (`implicit_and`), where OR binds tighter
    than AND, explicit or implicit (Splunk's search-language precedence)."""

    def p_or():
        if implicit_and:
            return p_and()
        items = [p_and()]
        while s.is_word("or"):
            s.next()
            items.append(p_and())
        return any_of(items)

    def p_and():
        items = [p_spl_or() if implicit_and else p_not()]
        while True:
            if s.is_word("and"):
                s.next()
            elif not (implicit_and and starts_term()):
                break
            items.append(p_spl_or() if implicit_and else p_not())
        return all_of(items)

    def p_spl_or():
        items = [p_not()]
        while s.is_word("or"):
            s.next()
            items.append(p_not())
        return any_of(items)

    def starts_term():
        kind, v, _ = s.peek()
        if kind == "end" or (kind == "op" and v in (")", "|", ",")):
            return False
        return not (kind == "word" and v.lower() in ("or", "and"))

    def p_not():
        if s.is_word(*not_words):
            s.next()
            return ("not", p_not())
        if s.is_op("("):
            s.next()
            e = p_or()
            s.expect_op(")")
            return e
        return atom_fn(s)

    return p_or()


# ---------------------------------------------------------------------------------------------
# KQL (Microsoft Defender XDR advanced hunting).

KQL_OPS = {
    "=~": ("eq", True), "==": ("eq", False), "contains": ("contains", True),
    "contains_cs": ("contains", False), "startswith": ("prefix", True),
    "startswith_cs": ("prefix", False), "endswith": ("suffix", True),
    "endswith_cs": ("suffix", False), "has": ("contains", True),
}


def kql_atom(s):
    kind, v, raw = s.next()
    if kind == "word" and v.lower() in ("isempty", "isnotempty", "isnull", "isnotnull"):
        s.expect_op("(")
        f = s.next()[1]
        s.expect_op(")")
        a = atom(f, "null", None, False)
        return ("not", a) if v.lower().startswith("isnot") else a
    if kind == "word" and v.lower() in ("ipv4_is_in_range", "ipv6_is_in_range"):
        s.expect_op("(")
        f = s.next()[1]
        s.expect_op(",")
        c = s.value()
        s.expect_op(")")
        return atom(f, "cidr", c.lower(), False)
    if kind == "word" and v.lower() == "todouble":
        s.expect_op("(")
        f = s.next()[1]
        s.expect_op(")")
        op = s.next()[1]
        return atom(f, "cmp" + op, float(s.value()), False)
    if not (kind == "word" or (kind == "op" and v == "*")):
        raise ParseError(f"expected a column, found {raw!r}")
    field = v
    neg = False
    k2, op, raw2 = s.next()
    if op in ("!=", "!~"):
        neg, op = True, {"!=": "==", "!~": "=~"}[op]
    if op.startswith("!") and op[1:] in KQL_OPS:
        neg, op = True, op[1:]
    if op in KQL_OPS:
        kind, ci = KQL_OPS[op]
        if s.peek()[0] == "word":  # column against column (fieldref)
            other = s.next()[1]
            a = atom(field, "fieldref", other.lower(), ci)
        elif s.peek()[0] == "num":
            a = atom(field, "num", float(s.value()), False)
        else:
            a = lit(field, kind, s.value(), ci)
        return ("not", a) if neg else a
    if op in ("in~", "in", "!in~", "!in"):
        ci = op.endswith("~")
        a = any_of([lit(field, "eq", x, ci) for x in s.values()])
        return ("not", a) if op.startswith("!") else a
    if op.lower() == "matches":
        if not s.is_word("regex"):
            raise ParseError("expected 'regex' after 'matches'")
        s.next()
        return regex_atom(field, s.value())
    if op in ("<", ">", "<=", ">="):
        return atom(field, "cmp" + op, float(s.value()), False)
    raise ParseError(f"unknown KQL operator {raw2!r}")


def regex_atom(field, source, ci=False):
    flags = ""
    m = re.match(r"^\(\?([imsx]+)\)", source)
    if m:
        flags, source = m.group(1), source[m.end():]
    if ci and "i" not in flags:
        flags += "i"
    return atom(field, "re", ("".join(sorted(set(flags))), source), False)


def uncommented(text, marker="//"):
    """The query without the comment lines imdsguard writes above it (the rule's title)."""
    return "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith(marker))


def where_clauses(s, atom_fn, language):
    """`| where …` stages to the end of the query (KQL, ES|QL), joined by and."""
    parts = []
    while s.is_op("|"):
        s.next()
        if not s.is_word("where"):
            raise ParseError(f"unexpected {language} command {s.peek()[2]!r}")
        s.next()
        parts.append(parse_bool(s, atom_fn))
    if s.peek()[0] != "end":
        raise ParseError(f"trailing text at {s.peek()[2]!r}")
    return parts


def parse_kql(text):
    s = Stream(tokens(uncommented(text)))
    table = s.next()[1]
    return all_of([atom("$table", "eq", table, False)] + where_clauses(s, kql_atom, "KQL"))


# ---------------------------------------------------------------------------------------------
# SPL (Splunk): search terms (case-insensitive, `*` wildcards), then `| regex`, `| rex` + `| eval`
# + `| search`, and `| where` with eval functions.


def spl_term(s, conditions):
    kind, v, raw = s.next()
    if kind == "op" and v == "*":
        return ("const", True)
    if kind == "str":
        return atom("$keyword", "glob", like_glob(v, escape=None), True)
    if kind != "word":
        raise ParseError(f"expected a search term, found {raw!r}")
    field = v
    if s.is_word("in"):
        s.next()
        return any_of([glob(field, like_glob(x, one=None, escape=None), True) for x in s.values()])
    k2, op, raw2 = s.next()
    if op not in ("=", "!="):
        raise ParseError(f"unknown SPL comparison {raw2!r}")
    if s.is_op("*"):
        s.next()
        a = ("not", atom(field, "null", None, False))
        return ("not", a) if op == "!=" else a
    val = s.next()[1] if s.peek()[0] == "word" else s.value()  # `Field=true`: a bare term
    if field in conditions and val == "true":
        a = conditions[field]
    else:
        a = glob(field, like_glob(val, one=None, escape=None), True)
    return ("not", a) if op == "!=" else a


def spl_where(s):
    """`| where` eval expressions, as imdsguard writes them."""

    def term(s):
        kind, v, raw = s.next()
        if kind != "word":
            raise ParseError(f"expected an eval function, found {raw!r}")
        if s.is_op("==", "!="):
            # 'Field'==value: eval's equality (case-sensitive on strings).
            op = s.next()[1]
            num = s.peek()[0] == "num"
            val = s.value()
            a = atom(v, "num", float(val), False) if num else lit(v, "eq", val, False)
            return a if op == "==" else ("not", a)
        name = v.lower()
        s.expect_op("(")
        args = []
        while not s.is_op(")"):
            k, a, r = s.next()
            if k == "word" and s.is_op("("):  # lower(field)
                s.next()
                inner = s.next()[1]
                s.expect_op(")")
                a = ("call", a.lower(), inner)
            args.append((k, a))
            if s.is_op(","):
                s.next()
        s.expect_op(")")
        if name == "match":
            (_, f), (_, rx) = args
            return regex_atom(f, rx)
        if name == "cidrmatch":
            (_, c), (_, f) = args
            return atom(f, "cidr", c.lower(), False)
        if name == "isnull":
            return atom(args[0][1], "null", None, False)
        if name == "isnotnull":
            return ("not", atom(args[0][1], "null", None, False))
        if name == "like":
            (_, f), (_, p) = args
            return glob(f, like_glob(p, "%", "_"), False)
        if name == "lower" and s.is_op("=="):
            # lower('A')==lower('B'): fieldref.
            s.next()
            s.next()
            s.expect_op("(")
            other = s.next()[1]
            s.expect_op(")")
            return atom(args[0][1], "fieldref", other.lower(), True)
        raise ParseError(f"unknown eval function {v!r}")

    return parse_bool(s, term)


def parse_spl(text):
    text = uncommented(text, "```")
    # The pipeline: split on `|` at top level (tokens keep strings intact).
    s = Stream(tokens(text))
    conditions = {}
    parts = []
    stage = 0
    pending = None
    while s.peek()[0] != "end":
        if stage > 0:
            s.expect_op("|")
            cmd = s.next()[1].lower()
        else:
            cmd = "search"
            if s.is_word("search"):
                s.next()
        if cmd == "search":
            if s.is_word("or") and stage > 0:
                # pySigma-splunk writes `| search OR (…)` when an OR spans a `| rex` (see ACCEPTED).
                s.next()
            if not (s.is_op("|") or s.peek()[0] == "end"):
                parts.append(parse_bool(s, lambda st: spl_term(st, conditions), implicit_and=True))
        elif cmd == "regex":
            field = s.next()[1]
            op = s.next()[1]
            a = regex_atom(field, s.value())
            parts.append(a if op == "=" else ("not", a))
        elif cmd == "rex":
            if not s.is_word("field"):
                raise ParseError("expected field= after rex")
            s.next()
            s.expect_op("=")
            field = s.next()[1]
            rx = s.value()
            m = re.match(r"^\(\?<(\w+)>(.*)\)$", rx, re.S)
            if not m:
                raise ParseError(f"rex without one named group: {rx!r}")
            pending = (m.group(1), regex_atom(field, m.group(2)))
        elif cmd == "eval":
            cond = s.next()[1]
            s.expect_op("=")
            body = []
            depth = 0
            while not (depth == 0 and (s.is_op("|") or s.peek()[0] == "end")):
                t = s.next()
                depth += t[1] == "(" and t[0] == "op"
                depth -= t[1] == ")" and t[0] == "op"
                body.append(t[1])
            if pending is None or pending[0] not in body:
                raise ParseError(f"eval {cond} does not test the rex group")
            conditions[cond] = pending[1]
            pending = None
        elif cmd == "where":
            parts.append(spl_where(s))
        elif cmd == "table" or cmd == "fields":
            while not (s.is_op("|") or s.peek()[0] == "end"):
                s.next()
        else:
            raise ParseError(f"unknown SPL command {cmd!r}")
        stage += 1
    return all_of(parts)


# ---------------------------------------------------------------------------------------------
# EQL (Elastic): `category where expr`; `:` is case-insensitive with wildcards, `like~` likewise,
# `like` and `==` are case-sensitive, `regex~`/`regex` are Lucene regexes.


def eql_atom(s):
    kind, v, raw = s.next()
    if kind == "word" and s.is_op("("):
        name = v.lower()
        s.next()
        field = s.next()[1].lstrip("?")
        args = []
        while s.is_op(","):
            s.next()
            args.append(s.value())
        s.expect_op(")")
        if name == "cidrmatch":
            return any_of([atom(field, "cidr", c.lower(), False) for c in args])
        kinds = {"startswith": "prefix", "endswith": "suffix", "stringcontains": "contains"}
        base = name.rstrip("~")
        if base in kinds:
            return any_of([lit(field, kinds[base], a, name.endswith("~")) for a in args])
        raise ParseError(f"unknown EQL function {v!r}")
    if kind != "word":
        raise ParseError(f"expected a field, found {raw!r}")
    field = v.lstrip("?")
    k2, op, raw2 = s.next()
    op = op.lower()
    if op in ("==", "!=") and s.is_word("null"):
        s.next()
        a = atom(field, "null", None, False)
        return a if op == "==" else ("not", a)
    vals = s.values() if s.is_op("(") else [s.value()]
    if op in (":", "like~", "like"):
        # EQL wildcard strings have `*` and `?` and no escape for them.
        ci = op != "like"
        return any_of([glob(field, like_glob(x, escape=None), ci) for x in vals])
    if op in ("==", "!="):
        if s.t[s.i - 1][0] == "num":
            a = any_of([atom(field, "num", float(x), False) for x in vals])
        else:
            a = any_of([lit(field, "eq", x, False) for x in vals])
        return a if op == "==" else ("not", a)
    if op in ("in~", "in"):
        return any_of([lit(field, "eq", x, op == "in~") for x in vals])
    if op in ("regex~", "regex"):
        return any_of([regex_atom(field, x, ci=op == "regex~") for x in vals])
    if op in ("<", ">", "<=", ">="):
        return atom(field, "cmp" + op, float(vals[0]), False)
    raise ParseError(f"unknown EQL operator {raw2!r}")


def parse_eql(text):
    s = Stream(tokens(uncommented(text)))
    category = s.next()[1].lower()
    if not s.is_word("where"):
        raise ParseError("expected 'where' after the event category")
    s.next()
    e = parse_bool(s, eql_atom)
    if s.peek()[0] != "end":
        raise ParseError(f"trailing text at {s.peek()[2]!r}")
    return all_of([atom("$category", "eq", category, False), e])


# ---------------------------------------------------------------------------------------------
# ES|QL: `FROM … | WHERE expr`; LIKE and == are case-sensitive unless the field is lowered.


def esql_atom(s, escape="\\"):
    kind, v, raw = s.next()
    lowered = False
    if kind == "word" and s.is_op("("):
        name = v.lower()
        s.next()
        if name == "to_lower":
            field = s.next()[1]
            s.expect_op(")")
            lowered = True
            kind, v, raw = "word", field, field
        elif name == "coalesce":
            # COALESCE(expr, FALSE): a missing field makes the test false (Sigma's reading).
            e = parse_bool(s, lambda st: esql_atom(st, escape))
            s.expect_op(",")
            if not s.is_word("false"):
                raise ParseError("COALESCE without FALSE")
            s.next()
            s.expect_op(")")
            return e
        else:
            field = s.next()[1]
            inner_ci = False
            if field.lower() == "to_lower" and s.is_op("("):
                s.next()
                field = s.next()[1]
                s.expect_op(")")
                inner_ci = True
            s.expect_op(",")
            args = [s.value()]
            while s.is_op(","):
                s.next()
                args.append(s.value())
            s.expect_op(")")
            if name == "cidr_match":
                return any_of([atom(field, "cidr", c.lower(), False) for c in args])
            kinds = {"starts_with": "prefix", "ends_with": "suffix"}
            if name in kinds:
                return lit(field, kinds[name], args[0], inner_ci)
            raise ParseError(f"unknown ES|QL function {v!r}")
    if kind != "word":
        raise ParseError(f"expected a field, found {raw!r}")
    field = v
    ci = lowered
    if s.is_word("is"):
        s.next()
        neg = s.is_word("not")
        if neg:
            s.next()
        if not s.is_word("null"):
            raise ParseError("expected NULL")
        s.next()
        a = atom(field, "null", None, False)
        return ("not", a) if neg else a
    neg = False
    if s.is_word("not"):
        s.next()
        neg = True
    k2, op, raw2 = s.next()
    op = op.lower()
    if op == "like":
        vals = s.values() if s.is_op("(") else [s.value()]
        a = any_of([glob(field, like_glob(x, escape=escape), ci) for x in vals])
    elif op == "rlike":
        vals = s.values() if s.is_op("(") else [s.value()]
        a = any_of([regex_atom(field, x) for x in vals])
    elif op in ("==", "!="):
        if s.peek()[0] == "num":
            a = atom(field, "num", float(s.value()), False)
        elif s.is_word("true", "false"):
            # pySigma writes a YAML boolean bare: the keyword field holds "true"/"false".
            a = lit(field, "eq", s.next()[1].lower(), True)
        elif s.is_word("to_lower") or (s.peek()[0] == "word" and not s.is_word("null")):
            # `TO_LOWER(a) == TO_LOWER(b)`: Sigma's fieldref.
            other_ci = s.is_word("to_lower")
            if other_ci:
                s.next()
                s.expect_op("(")
            other = s.next()[1]
            if other_ci:
                s.expect_op(")")
            a = atom(field, "fieldref", other.lower().strip("`"), ci and other_ci)
        else:
            a = lit(field, "eq", s.value(), ci)
        if op == "!=":
            neg = not neg
    elif op == "in":
        a = any_of([lit(field, "eq", x, ci) for x in s.values()])
    elif op in ("<", ">", "<=", ">="):
        a = atom(field, "cmp" + op, float(s.value()), False)
    else:
        raise ParseError(f"unknown ES|QL operator {raw2!r}")
    return ("not", a) if neg else a


def parse_esql(text, like_escape=True):
    """`like_escape=False` reads LIKE patterns without `\\` escapes (how pySigma means them)."""
    s = Stream(tokens(uncommented(text)))
    if not s.is_word("from"):
        raise ParseError("expected FROM")
    while not (s.is_op("|") or s.peek()[0] == "end"):
        s.next()
    escape = "\\" if like_escape else None
    return all_of(where_clauses(s, lambda st: esql_atom(st, escape), "ES|QL"))


PARSERS = {"kql": parse_kql, "spl": parse_spl, "eql": parse_eql, "esql": parse_esql}


# ---------------------------------------------------------------------------------------------


def ours(binary, rules_dir, lang):
    """imdsguard's queries by rule file, and the reasons for the rules it does not export."""
    p = subprocess.run(
        [binary, "rules", "export", "--to", lang, "--output", "jsonl", rules_dir],
        capture_output=True, text=True,
    )
    if p.returncode not in (0, 1):
        sys.exit(f"imdsguard rules export --to {lang} failed: {p.stderr[-2000:]}")
    queries = {}
    for line in p.stdout.splitlines():
        q = json.loads(line)
        queries.setdefault(q["path"], []).append(q)
    return queries


def theirs(lang, texts):
    out = {}
    backend = BACKENDS[lang]()
    for key, text in texts.items():
        try:
            # Parsed again for every backend: pipelines rewrite the rule objects in place.
            out[key] = backend.convert(SigmaCollection.from_yaml(text))
        except Exception as e:  # noqa: BLE001 - a backend's refusal is data here
            out[key] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return out


def normal(x, lang):
    """Readings that are the same query in the language, not differences."""
    k = x[0]
    if k in ("and", "or"):
        return (k, tuple(normal(i, lang) for i in x[1]))
    if k == "not":
        return ("not", normal(x[1], lang))
    if k != "atom":
        return x
    _, field, test, value, ci = x
    if lang in ("eql", "esql") and field.endswith(".caseless"):
        # Elastic's `.caseless` sub-field (lower-cased keyword) under EQL's case-insensitive
        # `:`/`like~`: the same test as on the field itself.
        field = field[: -len(".caseless")]
        x = ("atom", field, test, value, ci)
    if test == "num" and float(value).is_integer():
        # `RemotePort == 443` and `RemotePort in~ ("443")`: one test of an integer column.
        return glob(field, str(int(value)), True)
    if test == "re" and lang != "kql" and "s" in value[0]:
        # imdsguard's `(?is)^…$` (or `(?s)` when cased) for a wildcard value it had to write as
        # a regex (SPL `| where`, Lucene): the same test as the glob.
        g = regex_glob(value[1])
        if g is not None:
            return glob(field, g, "i" in value[0])
    if lang == "kql" and test == "glob" and value == "*":
        # Defender columns are strings, empty when absent: `startswith ""` is always true.
        return ("const", True)
    return x


class Ctx(str):
    """The rule's text (a str, for the rewrites that look at it), and the other side's atoms."""

    def __new__(cls, text, other, notes=()):
        obj = super().__new__(cls, text)
        obj.other = other
        obj.notes = notes
        return obj


def literals(x, acc):
    if x[0] == "atom" or (x[0] == "not" and x[1][0] == "atom"):
        acc.add(x)
    elif x[0] in ("and", "or"):
        for i in x[1]:
            literals(i, acc)
    return acc


def regex_pulled_out(mine, pys_text):
    """pySigma's SPL has `| regex F="r"` where imdsguard's query only ever negates F ~ r."""
    ours = literals(canon(nnf(mine)), set())
    for field, source in re.findall(r'\|\s*regex\s+(\w+)="((?:[^"\\]|\\.)*)"', pys_text):
        a = regex_atom(field, unquote("str", '"' + source + '"'))
        if ("not", a) in ours and a not in ours:
            return True
    return False


def case_free(x, lang):
    """A test for the empty string has no case; in EQL and ES|QL neither has any value without
    letters (`: "::1"`, `== "0"`), however a rewrite wrote it."""
    k = x[0]
    if k in ("and", "or"):
        return (k, tuple(case_free(i, lang) for i in x[1]))
    if k == "not":
        return ("not", case_free(x[1], lang))
    if k == "atom" and x[2] == "glob" and x[4]:
        if x[3] == "" or (lang in ("eql", "esql") and x[3].lower() == x[3].upper()):
            return ("atom", x[1], "glob", x[3], False)
    return x


def compare(lang, mine, pys, text, notes=()):
    a = canon(nnf(case_free(normal(mine, lang), lang)))
    b = canon(nnf(case_free(normal(pys, lang), lang)))
    if a == b:
        return "equal", []
    if same_function(a, b):
        return "equivalent", []
    applied = []
    for name, langs, rewrite in ACCEPTED:
        if lang not in langs:
            continue
        ctx_a = Ctx(text, atoms_of(b, set()), notes)
        ctx_b = Ctx(text, atoms_of(a, set()), notes)
        a2 = canon(nnf(case_free(rewrite(a, "ours", ctx_a), lang)))
        b2 = canon(nnf(case_free(rewrite(b, "pysigma", ctx_b), lang)))
        if (a2, b2) != (a, b):
            applied.append(name)
            a, b = a2, b2
        if a == b or same_function(a, b):
            return "accepted", applied
    return "differ", applied


SPL_TERM = r'\w+=(?:"(?:[^"\\]|\\.)*"|[^\s()]+)'
BAD_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\([*?])")
# A literal `*` / `?` while pySigma's text is read: private-use characters no rule holds.
LITERAL = {"*": "\ue000", "?": "\ue001"}


def literal_wildcards(x, side, ctx):
    _, field, test, value, ci = x
    if test == "glob":
        value = value.replace("\ue000", "\\*").replace("\ue001", "\\?")
    return ("atom", field, test, value, ci)


def whole_query(lang, mine, pys_text, text, verdict, applied, notes=()):
    """Differences in how pySigma's backend builds the whole query, which no rewrite of single
    tests can model: each is recognised in pySigma's text and accepted with its reason."""
    if lang == "spl" and re.search(r"\|\s*search OR\b", pys_text):
        # pySigma-backend-splunk puts the part of an OR that holds a regex behind
        # `| rex … | search OR …`: the OR's other branches then filter instead of adding
        # (Splunk reads `search OR x` as `search x`), so its query is not the rule's logic and
        # there is nothing to compare against.
        return "accepted", ["splunk: OR split across `| rex` (`| search OR`)"]
    if lang == "spl" and regex_pulled_out(mine, pys_text):
        # pySigma-backend-splunk appends a regex as `| regex F="…"` (a positive filter on the
        # whole search) even where the rule negates it (`not all of filter_*`): its query
        # requires what the rule excludes. Not comparable.
        return "accepted", ["splunk: a negated regex appended as `| regex`"]
    if lang == "spl":
        m = re.search(r'\bNOT (%s(?: OR %s)+)' % (SPL_TERM, SPL_TERM), pys_text)
        if m:
            # pySigma-backend-splunk writes a negated OR group without its parentheses
            # (`NOT a OR b`); Splunk evaluates NOT before OR, so that is `(NOT a) OR b`, not the
            # rule's `NOT (a OR b)`. Compared with the parentheses it meant.
            meant = pys_text[: m.start(1)] + "(" + m.group(1) + ")" + pys_text[m.end(1):]
            v2, a2 = compare(lang, mine, parse_spl(meant), text, notes)
            if v2 != "differ":
                return "accepted", a2 + ["splunk: NOT applies to the first term of an OR"]
        for field, name in re.findall(r'\|\s*rex field=(\w+) "\(\?<(\w+)>', pys_text):
            if pys_text.count(name) == 1:
                # pySigma-backend-splunk extracts a regex into a field (`| rex … (?<FMatch>…)`)
                # and never filters on it: the rule's regex and the filters around it are lost
                # (wider). Nothing to compare.
                return "accepted", ["splunk: a regex extracted by `| rex` and never tested"]
        if BAD_ESCAPE.search(pys_text):
            # Splunk's search cannot escape `*` (Search Manual, "Backslashes": "The backslash
            # symbol can't be used to escape the asterisk in search strings"), nor has it a `?`
            # wildcard: pySigma's `\*` is no literal asterisk. imdsguard writes such a value as
            # `| where match(…)`, exact. Not comparable.
            return "accepted", ["splunk: `\\*` cannot escape an asterisk in a search string"]
    m = re.search(r"\band not (?!\()(.*\bor\b.*)$", pys_text)
    if lang == "esql" and m and "(" not in m.group(1):
        # pySigma-backend-elasticsearch writes a negated OR group at the end without its
        # parentheses (`… and not a or b or c`), which ES|QL reads as `(… and not a) or b or c`:
        # its query is not the rule's logic. Compared with the parentheses it meant.
        meant = pys_text[: m.start(1)] + "(" + m.group(1) + ")"
        for like_escape in (True, False):
            v2, a2 = compare(lang, mine, parse_esql(meant, like_escape=like_escape), text, notes)
            if v2 != "differ":
                return "accepted", a2 + ["esql: pySigma drops the parentheses of a negated OR"]
    if lang == "esql" and BAD_ESCAPE.search(pys_text):
        # pySigma-backend-elasticsearch writes a literal `*` or `?` as `\*`, `\?` inside an
        # ES|QL string, which ES|QL's lexer rejects (EsqlBaseLexer.g4: a string escapes only
        # t, n, r, `"` and `\`): its query does not run. Read with those as LIKE escapes of a
        # literal `*` or `?`, as it meant them.
        fixed = BAD_ESCAPE.sub(lambda m: m.group(1) + LITERAL[m.group(2)], pys_text)
        for like_escape in (False, True):
            meant = map_atoms(literal_wildcards)(parse_esql(fixed, like_escape=like_escape), "", "")
            v2, a2 = compare(lang, mine, meant, text, notes)
            if v2 != "differ":
                return "accepted", a2 + ["esql: pySigma's `\\*`/`\\?` are not ES|QL escapes"]
    if lang == "esql":
        # pySigma-backend-elasticsearch's ES|QL writes a value's backslashes into LIKE
        # unescaped, where ES|QL reads `\` as LIKE's escape (`"*:\\Temp\\*"` is `*:Temp*`
        # there, the path separators lost). Compared by reading pySigma's patterns as it meant
        # them.
        v2, a2 = compare(lang, mine, parse_esql(pys_text, like_escape=False), text, notes)
        if v2 != "differ":
            return "accepted", a2 + ["esql: pySigma's LIKE patterns leave `\\` unescaped"]
    return verdict, applied


def main():
    args = sys.argv[1:]
    report = None
    langs = list(BACKENDS)
    if "--report" in args:
        i = args.index("--report")
        report = args[i + 1]
        del args[i:i + 2]
    if "--lang" in args:
        i = args.index("--lang")
        langs = args[i + 1].split(",")
        del args[i:i + 2]
    json_out = None
    if "--json" in args:
        i = args.index("--json")
        json_out = args[i + 1]
        del args[i:i + 2]
    binary, rules_dir = args
    selftest()
    summary = {}
    texts = {str(f): f.read_text() for f in sorted(Path(rules_dir).rglob("*.yml"))}
    unexplained = 0
    lines = []
    for lang in langs:
        mine = ours(binary, rules_dir, lang)
        pys = theirs(lang, texts)
        stats = Counter()
        reasons = Counter()
        for key, text in texts.items():
            m, p = mine.get(key), pys.get(key)
            if isinstance(p, str) or not p:
                stats["pySigma refuses"] += 1
                continue
            if not m:
                stats["imdsguard refuses"] += 1
                continue
            if len(m) != 1 or len(p) != 1:
                stats["several queries"] += 1
                continue
            try:
                tm = PARSERS[lang](m[0]["query"])
            except ParseError as e:
                stats["imdsguard query unreadable"] += 1
                lines.append(f"{lang}\tunreadable-ours\t{key}\t{e}\t{m[0]['query'][:300]!r}")
                unexplained += 1
                continue
            try:
                tp = PARSERS[lang](p[0])
            except ParseError as e:
                stats["pySigma query unreadable"] += 1
                lines.append(f"{lang}\tunreadable-pysigma\t{key}\t{e}\t{p[0][:300]!r}")
                continue
            notes = tuple(m[0].get("notes", ()))
            verdict, applied = compare(lang, tm, tp, text, notes)
            if verdict == "differ":
                verdict, applied = whole_query(lang, tm, p[0], text, verdict, applied, notes)
            stats[verdict] += 1
            for a in applied:
                reasons[a] += 1
            if verdict == "differ":
                unexplained += 1
                only_ours, only_theirs = atom_diff(tm, tp)
                lines.append(
                    f"{lang}\tdiffer\t{key}\t{applied}\n  ours: {m[0]['query']}\n  pysi: {p[0]}"
                    f"\n  tests only in ours: {only_ours}\n  tests only in pySigma's: {only_theirs}"
                )
        summary[lang] = {"stats": dict(stats), "accepted": dict(reasons)}
        print(f"{lang}: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.items())))
        for k, v in reasons.most_common():
            print(f"  accepted: {k}: {v} rules")
    if report:
        Path(report).write_text("\n".join(lines) + "\n")
    print(f"unexplained: {unexplained}")
    if json_out:
        Path(json_out).write_text(json.dumps(summary, indent=1))
    return 1 if unexplained else 0


# ---------------------------------------------------------------------------------------------
def selftest():
    """The comparison can fail: a changed operator, value, case or connective is a difference."""
    base = 'T\n| where (A endswith "\\\\x.exe" or B =~ "y") and not(C contains "z")'
    same = 'T\n| where not(C contains "z") and (B in~ ("y") or A endswith "\\\\X.EXE")'
    assert compare("kql", parse_kql(base), parse_kql(same), "")[0] in ("equal", "equivalent")
    for changed in (
        base.replace("endswith", "startswith"),
        base.replace('"y"', '"w"'),
        base.replace("=~", "=="),
        base.replace(" or ", " and "),
        base.replace("not(", "("),
    ):
        verdict = compare("kql", parse_kql(base), parse_kql(changed), "")[0]
        assert verdict == "differ", (changed, verdict)


# Accepted differences: (name, languages, rewrite(tree, side, rule text)). Each rewrite maps both
# sides onto one reading; the comment says why the two differ and which reading is right.


def map_atoms(fn):
    def walk(x, side, text):
        k = x[0]
        if k in ("and", "or"):
            return (k, tuple(walk(i, side, text) for i in x[1]))
        if k == "not":
            return ("not", walk(x[1], side, text))
        if k == "atom":
            return fn(x, side, text)
        return x

    return walk


def regex_glob(source):
    """A regex imdsguard wrote for a wildcard value (`^lit.*lit.$`) as that glob, or None."""
    if not (source.startswith("^") and source.endswith("$")):
        return None
    body, out, i = source[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(esc_glob(body[i + 1]))
            i += 2
        elif body.startswith(".*", i):
            out.append("*")
            i += 2
        elif c == ".":
            out.append("?")
            i += 1
        elif c in "[](){}|+?*^$":
            return None
        else:
            out.append(esc_glob(c))
            i += 1
    return "".join(out)


def glob_literals(g):
    """The literal runs of a glob, split at its wildcards."""
    parts, cur, i = [], [], 0
    while i < len(g):
        if g[i] == "\\" and i + 1 < len(g):
            cur.append(g[i + 1])
            i += 2
        elif g[i] in "*?":
            parts.append("".join(cur))
            cur = []
            i += 1
        else:
            cur.append(g[i])
            i += 1
    parts.append("".join(cur))
    return [p for p in parts if p]


# pySigma-backend-kusto writes a value with wildcards inside (`\Modules\*\.ps` with endswith)
# as one `contains` per literal part: order, adjacency and anchors are lost, so it selects more
# than Sigma says. imdsguard writes an anchored `matches regex` that selects exactly the value.
# Compared here by reducing imdsguard's regex to pySigma's approximation (the same literals).
# The split also drops a backslash of a doubled pair and one before an escaped wildcard
# (`\\\\*` → `\\`, `:\\\*.` → `:*.`), and a value without wildcards at either end (an
# exact match) is not split but left as an unanchored regex: wider still in each case.
def kusto_split_wildcards(x, side, text):
    _, field, test, value, ci = x
    if side != "ours" or test != "glob":
        return x
    lits = glob_literals(value)
    inner = len(lits) >= 2 or re.search(r"(?<!\\)\?", value)
    if not inner:
        return x
    if not value.startswith("*") and not value.endswith("*"):
        return glob(field, "*" + value + "*", True)
    segs = [seg.replace("\\\\", "\\").replace("\\*", "*").replace("\\?", "?") for seg in lits]
    return all_of([lit(field, "contains", seg, True) for seg in segs])


# pySigma-backend-kusto writes a value with wildcards inside as an unanchored `matches regex`
# without `(?i)` where it does not split it: case-sensitive, though Sigma's wildcard values are
# case-insensitive. imdsguard adds `(?i)` and anchors. Compared by reading both as globs.
def kusto_cs_wildcard_regex(x, side, text):
    _, field, test, value, ci = x
    if test != "re" or "|re" in text:
        return x
    src = value[1]
    if side == "pysigma":
        # Unanchored: `x` selects what `^.*x.*$` does.
        src = "^.*" + src + ".*$"
    g = regex_glob(src)
    if g is None:
        return x
    while "**" in g:
        g = g.replace("**", "*")
    return glob(field, g, True)


# Base64 (`base64`, `base64offset`) values are case-sensitive by nature: imdsguard writes
# `contains_cs`; pySigma-backend-kusto writes `contains` (case-insensitive, wider).
def kusto_base64_case(x, side, text):
    _, field, test, value, ci = x
    if side == "ours" and test == "glob" and not ci and "|base64" in text:
        return glob(field, value, True)
    return x


# pySigma's Microsoft XDR pipeline maps `FileName` (the kernel-file provider's full path, in
# file_access/file_delete rules) to Defender's `FileName` column, which holds only the last path
# component, so its `contains "\\AppData\\…"` never matches. imdsguard maps it to `FolderPath`.
def xdr_filename(x, side, text):
    _, field, test, value, ci = x
    if side == "pysigma" and field == "filename":
        return ("atom", "folderpath", test, value, ci)
    return x


# pySigma's XDR pipeline drops the trailing backslash of a registry key in `contains` and leaves
# a literal `*` in `endswith "…\\Key*"` (KQL's endswith has no wildcards: it never matches);
# `HKLM\\SYSTEM\\CurrentControlSet` becomes `…\\CurrentControlSet001` and `HKCR` becomes
# `HKEY_LOCAL_MACHINE\\CLASSES`, names Windows does not use (Defender writes ControlSet001 and
# `…\\SOFTWARE\\Classes`). imdsguard keeps the key text and expands only HKLM and HKU.
def xdr_registry_key(x, side, text):
    _, field, test, value, ci = x
    if field != "registrykey" or test != "glob":
        return x
    if side == "pysigma":
        value = re.sub(r"\\\*$", "\\\\\\\\*", value)
        value = value.replace("currentcontrolset001", "currentcontrolset")
        value = value.replace("hkey_local_machine\\\\classes", "hkcr")
    return ("atom", field, test, value, ci)


def map_literals(fn):
    """Rewrites the literals (atoms and negated atoms) of a tree in negation normal form."""

    def walk(x, side, text):
        k = x[0]
        if k in ("and", "or"):
            return (k, tuple(walk(i, side, text) for i in x[1]))
        if k == "atom" or (k == "not" and x[1][0] == "atom"):
            return fn(x, side, text)
        return x

    return walk


# pySigma's XDR pipeline maps image_load's OriginalFileName/Description/Product/Company (the
# loaded DLL's version info) to the *loading process's* version-info columns. imdsguard has no
# column for the DLL's version info in DeviceImageLoadEvents and leaves such a test out, which
# widens the query where it stands (a note says so). Compared by widening pySigma's too.
def xdr_image_load_version_info(x, side, text):
    a = x if x[0] == "atom" else x[1]
    if side == "pysigma" and "image_load" in text and a[1].startswith("initiatingprocessversioninfo"):
        return ("const", True)
    return x


# Sysmon's registry EventType onto Defender's ActionType: pySigma reads DeleteKey as "key or
# value deleted", RenameKey as "value set or key created" and leaves DeleteValue unmapped (a value
# Defender never writes); imdsguard maps each to its one counterpart and leaves RenameKey out.
# Compared by the kind of action.
def xdr_action_type(x, side, text):
    a = x if x[0] == "atom" else x[1]
    if a[1] != "actiontype" or a[2] != "glob":
        return x
    kind = {"registrykeydeleted": "delete", "registryvaluedeleted": "delete", "deletevalue": "delete",
            "registrykeycreated": "create", "registryvalueset": "set"}.get(a[3], a[3])
    b = ("atom", a[1], a[2], kind, a[4])
    return b if x[0] == "atom" else ("not", b)


# pySigma-backend-splunk writes a literal `*` or `?` of a value as a wildcard (Splunk's search
# cannot escape them: wider); imdsguard writes such a value as `| where match(…)`, exact.
def splunk_literal_wildcards(x, side, ctx):
    _, field, test, value, ci = x
    if side == "ours" and test == "glob":
        value = re.sub(r"\\(.)", lambda m: m.group(1) if m.group(1) in "*?" else m.group(0), value)
        return ("atom", field, test, value, ci)
    return x


# Splunk's search has no one-character wildcard: imdsguard writes a value holding Sigma's `?` as
# `| where match(…, ".")`; pySigma-backend-splunk writes the `?` into the search string, where
# Splunk reads it literally (narrower: a rule's `Get-Process | ?` then needs a literal `?`).
def splunk_one_char_wildcard(x, side, ctx):
    _, field, test, value, ci = x
    if side == "pysigma" and test == "glob" and "\\?" not in ctx and "\\?" in value:
        return ("atom", field, test, value.replace("\\?", "?"), ci)
    return x


# pySigma-backend-splunk drops a test for the empty string (`Field: ''`); imdsguard writes
# `Field=""`. Compared by leaving the test out of imdsguard's query as well.
def splunk_empty_value(x, side, ctx):
    a = x if x[0] == "atom" else x[1]
    if side == "ours" and a[2] == "glob" and a[3] == "":
        return ("drop",)
    return x


# pySigma-backend-splunk writes a keyword as a bare quoted term ("term": Splunk's token
# search); imdsguard writes "*term*", Sigma's reading (the keyword anywhere in the event).
def splunk_keyword_terms(x, side, ctx):
    _, field, test, value, ci = x
    if side == "pysigma" and field == "$keyword" and test == "glob":
        return ("atom", field, test, "*" + value.strip("*") + "*", ci)
    return x


# imdsguard scopes every rule on a Windows service to its channel (`source="WinEventLog:…"`,
# `winlog.channel`); pySigma's pipelines know fewer services and leave the others unscoped
# (wider: events of any channel with the same fields match).
def unscoped_service(x, side, ctx):
    a = x if x[0] == "atom" else x[1]
    if side == "ours" and a[1] in ("source", "winlog.channel", "channel"):
        if not any(o[1] == a[1] for o in ctx.other):
            return ("const", True)
    return x


# pySigma-backend-elasticsearch's EQL writes every query as `any where`; imdsguard names the
# event category of the rule's log source (`process where`, `network where`, …), as EQL's
# sequence and category indexes expect. pySigma's is wider.
def eql_any_category(x, side, ctx):
    _, field, test, value, ci = x
    if field == "$category" and side == "ours":
        if ("atom", "$category", "eq", "any", False) in ctx.other:
            return ("atom", field, test, "any", ci)
    return x


# Regexes: imdsguard translates a Sigma (PCRE-like) regex into Lucene's dialect, which EQL and
# ES|QL run (whole-value match: `.*` added where unanchored; `\d \s \w` spelled as classes;
# case-insensitivity as `regex~` or by lowering); pySigma keeps the Sigma source, which Lucene
# reads differently (`\d` is a literal `d` there, anchors are literal). The translation is
# tested in crates/imdsguard-query/src/lucene.rs; here a regex is compared by field only.
def regex_dialect(x, side, ctx):
    _, field, test, value, ci = x
    if test == "re":
        return ("atom", field, "re", "(regex)", False)
    return x


# pySigma-backend-elasticsearch's ES|QL compares values case-sensitively (`like`, `==`,
# `starts_with` on the field as stored, and on `.caseless` sub-fields with values it does not
# lower, which never match mixed case); Sigma's values are case-insensitive, and imdsguard
# lowers both sides (`TO_LOWER(field) LIKE "value"`; not for digits-only fields like event.code).
# Compared by reading every string test as case-insensitive (unless the rule uses `cased`).
def esql_case(x, side, ctx):
    _, field, test, value, ci = x
    if test != "glob":
        return x
    if field.endswith(".caseless"):
        field = field[: -len(".caseless")]
    if "|cased" in ctx:
        return ("atom", field, test, value, ci)
    return glob(field, value, value.lower() != value.upper())


# Winlogbeat: where its modules put each field (x-pack/winlogbeat/module/{sysmon,security}/ingest
# in elastic/beats), which imdsguard's EQL and ES|QL follow (crates/imdsguard-query/data/ecs.toml,
# src/winlogbeat.rs) and pySigma's ECS Windows pipeline does not. Each entry: pySigma's field,
# the event-data field imdsguard reads instead, and why imdsguard's is right.
WINLOGBEAT_KEPT = [
    # The Security module *copies* these (event data keeps them) and fills user.* from the
    # *target* account for logon and Kerberos events (4624, 4625, 4768-4771, 4776...): pySigma's
    # user.name is the wrong account there; SubjectUserName is right for every event.
    ("user.name", "winlog.event_data.subjectusername"),
    ("user.id", "winlog.event_data.subjectusersid"),
    ("user.domain", "winlog.event_data.subjectdomainname"),
    ("winlog.logon.id", "winlog.event_data.subjectlogonid"),
    # Copied by the Security module (service installs, 4778/4779 sessions): both hold the value;
    # for System 7045 (no module) only event data does.
    ("service.name", "winlog.event_data.servicename"),
    ("user.name", "winlog.event_data.accountname"),
    # Security 4688-less events keep ProcessName, IpAddress, IpPort, WorkstationName outside the
    # module's "Rename Common Auth Fields" codes (4656, 4663, 4776, 4778, 5156...): event data.
    ("process.executable", "winlog.event_data.processname"),
    ("source.ip", "winlog.event_data.ipaddress"),
    ("source.port", "winlog.event_data.ipport"),
    ("source.domain", "winlog.event_data.workstationname"),
    ("source.ip", "winlog.event_data.clientaddress"),
    # Filtering Platform 5156 and logs no module reads (DNS Client, SMB, System, ETW Kernel-File
    # for file_access/file_rename): Winlogbeat writes event data as it is.
    ("process.executable", "winlog.event_data.application"),
    ("destination.ip", "winlog.event_data.destaddress"),
    ("destination.port", "winlog.event_data.destport"),
    ("source.ip", "winlog.event_data.sourceaddress"),
    ("source.port", "winlog.event_data.sourceport"),
    ("dns.question.name", "winlog.event_data.queryname"),
    ("process.pid", "winlog.event_data.processid"),
    ("process.parent.pid", "winlog.event_data.parentprocessid"),
    ("process.executable", "winlog.event_data.image"),
    ("file.path", "winlog.event_data.filename"),
    ("file.path", "winlog.event_data.targetfilename"),
    # Sysmon: the module copies SignatureStatus and keeps Signed (it sets
    # file.code_signature.signed only when Signed is true, so `Signed: 'false'` never matches
    # there); Description outside image loads is copied too.
    ("file.code_signature.status", "winlog.event_data.signaturestatus"),
    ("file.code_signature.signed", "winlog.event_data.signed"),
    ("winlog.event_data.description", "process.pe.description"),
    # The Sysmon module renames CommandLine in every event; pySigma maps it only for
    # process_creation and leaves it in event data elsewhere, where it is gone.
    ("winlog.event_data.commandline", "process.command_line"),
    # No module reads the System log: event data (pySigma: the Sysmon image-load field).
    ("process.pe.description", "winlog.event_data.description"),
    # PowerShell module logging (4103) keeps Payload in event data; pySigma maps it to the
    # script-block field of 4104, which a 4103 event does not have.
    ("powershell.file.script_block_text", "winlog.event_data.payload"),
]


def winlogbeat_kept(x, side, ctx):
    _, field, test, value, ci = x
    if side != "pysigma":
        return x
    ours = {o[1] for o in ctx.other}
    if field in ours:
        return x
    for theirs, mine in WINLOGBEAT_KEPT:
        if theirs == field and mine in ours:
            return ("atom", mine, test, value, ci)
    return x


# The Security module moves these out of event data only under its "Rename Common Auth Fields"
# event codes (and keeps IpAddress/IpPort "-"): imdsguard reads event data, and the ECS field
# under those codes (`(ed.F or (event.code in (…) and ecs))`, or one of them when the rule's own
# event ids decide). Read as the ECS field, the two agree wherever pySigma's is right.
WINLOGBEAT_MOVED = {
    "winlog.event_data.processname": "process.executable",
    "winlog.event_data.ipaddress": "source.ip",
    "winlog.event_data.ipport": "source.port",
    "winlog.event_data.workstationname": "source.domain",
    "winlog.event_data.clientaddress": "source.ip",
    "related.ip": "source.ip",
}


def winlogbeat_moved(x, side, ctx):
    _, field, test, value, ci = x
    if side == "ours" and field in WINLOGBEAT_MOVED:
        target = WINLOGBEAT_MOVED[field]
        if any(o[1] == target for o in ctx.other):
            return ("atom", target, test, value, ci)
    return x


# The Sysmon module writes Initiated as network.direction "egress"/"ingress" and removes it;
# pySigma maps the field but keeps the value "true", which never matches there.
def winlogbeat_direction(x, side, ctx):
    _, field, test, value, ci = x
    if side == "pysigma" and field == "network.direction" and test == "glob":
        v = {"true": "egress", "false": "ingress"}.get(value.lower(), value)
        return ("atom", field, test, v, ci)
    return x


# The Sysmon module splits User ("NT AUTHORITY\SYSTEM") into user.domain and user.name and
# removes it: a pattern with a `\` tests each side, one without tests either part (exact for a
# substring). pySigma tests user.name with the whole value, which misses every domain-qualified
# match. pySigma's read as the split.
def winlogbeat_user(x, side, ctx):
    _, field, test, value, ci = x
    if side != "pysigma" or field != "user.name" or test != "glob":
        return x
    if not any(o[1] == "user.domain" for o in ctx.other):
        return x
    i = 0
    while i < len(value):
        if value[i] == "\\":
            if value[i + 1:i + 2] == "\\":
                # A literal backslash (escaped in the glob): split there.
                return all_of([glob("user.domain", value[:i], ci),
                               glob("user.name", value[i + 2:], ci)])
            i += 2
            continue
        i += 1
    return any_of([glob("user.domain", value, ci), glob("user.name", value, ci)])


# The Sysmon module moves registry Details to registry.data.strings and removes it, writing
# DWORD values in decimal ("DWORD (0x00000010)" is "16"). imdsguard follows; a pattern on Sysmon's
# own rendering of a number that it cannot rewrite is left out (wider, with a note). pySigma's
# read the same way.
DWORD = re.compile(r"^\*?dword \(0x([0-9a-f]{8})\)\*?$")


def winlogbeat_details(x, side, ctx):
    a = x if x[0] == "atom" else x[1]
    _, field, test, value, ci = a
    if side != "pysigma" or field != "winlog.event_data.details":
        return x
    if test != "glob":
        b = ("atom", "registry.data.strings", test, value, ci)
        return b if x[0] == "atom" else ("not", b)
    v = value.lower()
    wild = re.search(r"(?<!\\)[*?]", v) is not None
    m = DWORD.match(v)
    if m and (not wild or (v.startswith("*") and v.endswith("*"))):
        b = glob("registry.data.strings", str(int(m.group(1), 16)), False)
    elif not wild:
        if v.startswith("qword"):
            return ("const", True)
        b = ("atom", "registry.data.strings", test, value, ci)
    elif v in ("dword*", "dword (*", "dword (0*", "dword (0x*"):
        b = glob("registry.data.type", "sz_dword", True)
    elif any(k in v for k in ("dword", "qword", "0x")):
        return ("const", True)
    else:
        b = ("atom", "registry.data.strings", test, value, ci)
    return b if x[0] == "atom" else ("not", b)


# The Sysmon module splits Hashes ("SHA256=…,IMPHASH=…") into process.hash.<alg> (file.hash for
# image and driver loads) and *.pe.imphash, lower-cased, and removes it: "ALG=value" inside the
# field is a prefix test of that hash there. pySigma's read the same way.
def winlogbeat_hashes(x, side, ctx):
    _, field, test, value, ci = x
    if side != "pysigma" or field != "winlog.event_data.hashes" or test != "glob":
        return x
    m = re.match(r"^\*?([a-z0-9]+)=([^*?,=]+)\*?$", value.lower())
    if not m:
        return x
    alg, v = m.groups()
    owner = "file" if any(o[1].startswith("file.") for o in ctx.other) else "process"
    target = f"{owner}.pe.imphash" if alg == "imphash" else f"{owner}.hash.{alg}"
    return glob(target, v + "*", True)


# Sigma's null is "absent or empty"; imdsguard writes `(F == null or F == "")`, pySigma
# `F == null`. Winlogbeat drops empty event-data values, so on its data the two agree; on a
# shipper that keeps empty strings imdsguard's is the specification's reading.
def null_or_empty(x, side, ctx):
    _, field, test, value, ci = x
    if side == "ours" and test == "glob" and value == "":
        if ("atom", field, "null", None, False) in ctx.other:
            return ("atom", field, "null", None, False)
    return x


# A regex Lucene cannot run as Sigma means it (an anchor inside the expression, a lookaround)
# is left out of imdsguard's query, which widens it where it stands and says so in a note;
# pySigma writes the expression as it is, where Lucene reads `^`, `$` as literal characters (its
# test never matches as the rule means). Compared by leaving pySigma's out too.
def regex_left_out(x, side, ctx):
    a = x if x[0] == "atom" else x[1]
    if side == "pysigma" and a[2] == "fieldref" and a[1] == "user.name":
        # Winlogbeat splits Sysmon's User at `\`: no field holds the whole value to compare
        # with another field, so imdsguard leaves the test out (wider, noted).
        if any(n.startswith("User fieldref") and "left out (wider)" in n for n in ctx.notes):
            return ("const", True)
    if side != "pysigma" or a[2] != "re":
        return x
    source = a[3][1].replace("\\/", "/")
    for n in ctx.notes:
        m = re.match(r'regex ("(?:[^"\\]|\\.)*"): .*left out \(wider\)', n)
        if m and json.loads(m.group(1)) == source:
            return ("const", True)
    return x


# Sigma's fieldref compares two fields as Sigma compares values, case-insensitively: imdsguard
# lowers both (`TO_LOWER(a) == TO_LOWER(b)`); pySigma's ES|QL compares them as stored
# (case-sensitive, narrower) and leaves the referenced field's name unmapped (`TargetUserName`, a
# column Winlogbeat never writes; it is `winlog.event_data.TargetUserName`). pySigma's read as meant.
def fieldref_reading(x, side, ctx):
    _, field, test, value, ci = x
    if side != "pysigma" or test != "fieldref":
        return x
    if value.endswith(".caseless"):
        value = value[: -len(".caseless")]
    if "." not in value:
        value = "winlog.event_data." + value
    return ("atom", field, test, value, True)


ACCEPTED = [
    ("kusto: wildcards inside a value as a case-sensitive regex", {"kql"},
     map_atoms(kusto_cs_wildcard_regex)),
    ("kusto: wildcards inside a value split into unordered contains (wider)", {"kql"},
     map_atoms(kusto_split_wildcards)),
    ("base64 values matched case-insensitively (wider)", {"kql", "spl", "eql", "esql"},
     map_atoms(kusto_base64_case)),
    ("xdr: FileName mapped to the name-only column", {"kql"}, map_atoms(xdr_filename)),
    ("xdr: registry key text rewritten", {"kql"}, map_atoms(xdr_registry_key)),
    ("xdr: image_load version info of the loading process", {"kql"},
     map_literals(xdr_image_load_version_info)),
    ("xdr: registry action types", {"kql"}, map_literals(xdr_action_type)),
    ("splunk: literal wildcards read as wildcards (wider)", {"spl"}, map_atoms(splunk_literal_wildcards)),
    ("splunk: empty-string tests dropped", {"spl"}, map_literals(splunk_empty_value)),
    ("splunk: keywords as bare terms", {"spl"}, map_atoms(splunk_keyword_terms)),
    ("splunk: one-character wildcard written literally", {"spl"}, map_atoms(splunk_one_char_wildcard)),
    ("service log not scoped by pySigma (wider)", {"spl", "eql", "esql"}, map_literals(unscoped_service)),
    ("eql: pySigma writes `any where`", {"eql"}, map_atoms(eql_any_category)),
    ("esql: pySigma matches case-sensitively", {"esql"}, map_atoms(esql_case)),
    ("test no ECS field can answer left out (wider, noted)", {"eql", "esql"},
     map_literals(regex_left_out)),
    ("regex dialect: Lucene translation against the Sigma source", {"eql", "esql"}, map_atoms(regex_dialect)),
    ("winlogbeat: field kept in event data", {"eql", "esql"}, map_atoms(winlogbeat_kept)),
    ("winlogbeat: Security field moved for some event codes", {"eql", "esql"},
     map_atoms(winlogbeat_moved)),
    ("winlogbeat: Initiated as network.direction", {"eql", "esql"}, map_atoms(winlogbeat_direction)),
    ("winlogbeat: User split at the backslash", {"eql", "esql"}, map_atoms(winlogbeat_user)),
    ("winlogbeat: Details as registry.data.strings", {"eql", "esql"},
     map_literals(winlogbeat_details)),
    ("winlogbeat: Hashes split by algorithm", {"eql", "esql"}, map_atoms(winlogbeat_hashes)),
    ("null: absent or empty", {"eql", "esql"}, map_atoms(null_or_empty)),
    ("fieldref: case-insensitive, the other field mapped", {"esql"}, map_atoms(fieldref_reading)),
]


if __name__ == "__main__":
    sys.exit(main())
