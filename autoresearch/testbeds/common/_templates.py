"""The 37 task templates of the generated code suite (`tasks.py`): arithmetic, strings, lists, dicts, loops, ifs.

A template draws one behaviour from an rng and returns a `Draft`: the behaviour key (template name + constants,
words, operators — it decides the train/held-out split), a function name and argument names (free surface, not in
the key), the docstring sentence, the reference body, an independent Python oracle for the expected outputs, and an
input sampler. Every behaviour parameter is stated in the docstring, so an unseen key is solvable by reading it.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Draft", "TEMPLATES", "WORDS"]


@dataclass
class Draft:
    key: tuple
    name: str
    args: list[tuple[str, str]]
    returns: str
    doc: str
    body: str
    oracle: Callable[..., Any]
    draw: Callable[[random.Random], tuple]
    must: tuple[tuple, ...] = ()
    """Argument tuples the hidden tests always include: boundary cases that tell c from c + 1 and the like."""


TEMPLATES: dict[str, tuple[str, Callable[[random.Random], Draft]]] = {}
"""template name -> (family, draft maker)."""

WORDS = ("cat", "dog", "sun", "red", "blue", "tree", "fish", "star", "moon", "bird", "code", "data", "tea", "map",
         "key", "box", "pen", "cup", "hat", "egg", "ice", "jam", "owl", "fox", "bee", "ant", "zip", "top", "end",
         "yes", "no", "ok", "big", "low", "high", "even", "odd", "hot", "cold", "left", "right", "up", "down", "on",
         "off", "win", "new", "old")
LETTERS = string.ascii_lowercase
INT_NAMES = ("x", "n", "a", "num", "value")
STR_NAMES = ("s", "text", "word", "name")
LIST_NAMES = ("xs", "nums", "values", "items")
DICT_NAMES = ("d", "counts", "table", "scores")
PAIR_NAMES = (("a", "b"), ("x", "y"), ("m", "n"), ("p", "q"))
CMPS = {">": ("greater than", lambda a, b: a > b), "<": ("less than", lambda a, b: a < b),
        ">=": ("at least", lambda a, b: a >= b), "<=": ("at most", lambda a, b: a <= b)}


def _template(name: str, family: str) -> Callable[[Callable[[random.Random], Draft]], Callable[[random.Random], Draft]]:
    def register(fn: Callable[[random.Random], Draft]) -> Callable[[random.Random], Draft]:
        TEMPLATES[name] = (family, fn)
        return fn

    return register


def _word(r: random.Random, lo: int = 2, hi: int = 7, alphabet: str = LETTERS) -> str:
    return "".join(r.choice(alphabet) for _ in range(r.randint(lo, hi)))


def _ints(r: random.Random, lo: int = 0, hi: int = 6, vmax: int = 20, near: int | None = None) -> list[int]:
    """A list of small ints; with `near`, about half the elements lie within 2 of it (boundary cases for tests)."""
    return [max(0, near + r.randint(-2, 2)) if near is not None and r.random() < 0.5 else r.randint(0, vmax)
            for _ in range(r.randint(lo, hi))]


def _dict(r: random.Random, must: str | None = None, near: int | None = None) -> dict[str, int]:
    keys = r.sample(WORDS, r.randint(1, 4))
    if must is not None and must not in keys and r.random() < 0.5:
        keys[0] = must
    return {k: max(0, near + r.randint(-2, 2)) if near is not None and r.random() < 0.5 else r.randint(0, 20)
            for k in keys}


def _int1(r: random.Random) -> tuple:
    return (r.randint(0, 30),)


# --- arithmetic -------------------------------------------------------------------------------------------------


@_template("add_const", "arithmetic")
def _add_const(r: random.Random) -> Draft:
    c, x = r.randint(1, 40), r.choice(INT_NAMES)
    return Draft(("add_const", c), r.choice(["add_value", "increase", "plus_const", "shift_up", "add_offset"]),
                 [(x, "int")], "int", r.choice([f"Return {x} plus {c}.", f"Add {c} to {x} and return the result."]),
                 f"    return {x} + {c}\n", lambda v: v + c, _int1)


@_template("sub_const", "arithmetic")
def _sub_const(r: random.Random) -> Draft:
    c, x = r.randint(1, 40), r.choice(INT_NAMES)
    return Draft(("sub_const", c), r.choice(["subtract_value", "decrease", "minus_const", "shift_down", "take_away"]),
                 [(x, "int")], "int",
                 r.choice([f"Return {x} minus {c}.", f"Subtract {c} from {x} and return the result."]),
                 f"    return {x} - {c}\n", lambda v: v - c, _int1)


@_template("mul_const", "arithmetic")
def _mul_const(r: random.Random) -> Draft:
    c, x = r.randint(2, 20), r.choice(INT_NAMES)
    return Draft(("mul_const", c), r.choice(["scale", "multiply", "times_const", "grow", "mul_value"]),
                 [(x, "int")], "int", r.choice([f"Return {x} multiplied by {c}.", f"Return {c} times {x}."]),
                 f"    return {x} * {c}\n", lambda v: v * c, _int1)


@_template("floordiv_const", "arithmetic")
def _floordiv_const(r: random.Random) -> Draft:
    c, x = r.randint(2, 12), r.choice(INT_NAMES)
    return Draft(("floordiv_const", c), r.choice(["divide", "quotient", "split_even", "int_div", "share"]),
                 [(x, "int")], "int",
                 r.choice([f"Return {x} divided by {c}, rounded down.", f"Return the integer quotient of {x} and {c}."]),
                 f"    return {x} // {c}\n", lambda v: v // c, lambda g: (g.randint(0, 60),), ((c,),))


@_template("mod_const", "arithmetic")
def _mod_const(r: random.Random) -> Draft:
    c, x = r.randint(2, 12), r.choice(INT_NAMES)
    return Draft(("mod_const", c), r.choice(["remainder", "modulo", "mod_value", "leftover", "wrap"]),
                 [(x, "int")], "int",
                 r.choice([f"Return the remainder of {x} divided by {c}.", f"Return {x} modulo {c}."]),
                 f"    return {x} % {c}\n", lambda v: v % c, lambda g: (g.randint(0, 60),), ((c,),))


@_template("affine", "arithmetic")
def _affine(r: random.Random) -> Draft:
    a, b, x = r.randint(2, 9), r.randint(1, 20), r.choice(INT_NAMES)
    return Draft(("affine", a, b), r.choice(["affine", "linear", "transform", "scale_shift", "line"]),
                 [(x, "int")], "int",
                 r.choice([f"Return {x} times {a} plus {b}.", f"Multiply {x} by {a}, add {b} and return the result."]),
                 f"    return {x} * {a} + {b}\n", lambda v: v * a + b, _int1)


@_template("pair_op_const", "arithmetic")
def _pair_op_const(r: random.Random) -> Draft:
    op, word = r.choice([("+", "sum"), ("-", "difference"), ("*", "product")])
    c, (p, q) = r.randint(2, 9), r.choice(PAIR_NAMES)
    fn = {"+": lambda u, v: (u + v) * c, "-": lambda u, v: (u - v) * c, "*": lambda u, v: (u * v) * c}[op]
    return Draft(("pair_op_const", op, c), r.choice(["combine", "mix", "pair_value", "join_nums", "blend"]),
                 [(p, "int"), (q, "int")], "int", f"Return the {word} of {p} and {q}, multiplied by {c}.",
                 f"    return ({p} {op} {q}) * {c}\n", fn, lambda g: (g.randint(0, 12), g.randint(0, 12)))


@_template("divisible", "arithmetic")
def _divisible(r: random.Random) -> Draft:
    c, x = r.randint(2, 12), r.choice(INT_NAMES)
    return Draft(("divisible", c), r.choice(["is_multiple", "divisible", "check_div", "fits", "is_divisible"]),
                 [(x, "int")], "bool",
                 r.choice([f"Return True if {x} is divisible by {c}, otherwise False.",
                           f"Check whether {x} is a multiple of {c}."]),
                 f"    return {x} % {c} == 0\n", lambda v: v % c == 0,
                 lambda g: (c * g.randint(0, 6) if g.random() < 0.5 else g.randint(0, 60),), ((c,),))


@_template("power_plus", "arithmetic")
def _power_plus(r: random.Random) -> Draft:
    k, c, x = r.randint(2, 4), r.randint(0, 9), r.choice(INT_NAMES)
    return Draft(("power_plus", k, c), r.choice(["power", "raise_up", "pow_shift", "exp_value", "powered"]),
                 [(x, "int")], "int", f"Return {x} to the power {k}, plus {c}.",
                 f"    return {x} ** {k} + {c}\n", lambda v: v**k + c, lambda g: (g.randint(0, 9),))


# --- strings ----------------------------------------------------------------------------------------------------


@_template("suffix", "strings")
def _suffix(r: random.Random) -> Draft:
    w, s = r.choice(WORDS), r.choice(STR_NAMES)
    return Draft(("suffix", w), r.choice(["add_suffix", "append_word", "extend", "tail_add", "finish"]),
                 [(s, "str")], "str",
                 r.choice([f'Return {s} with "{w}" added to the end.', f'Append "{w}" to {s} and return it.']),
                 f'    return {s} + "{w}"\n', lambda v: v + w, lambda g: (_word(g),))


@_template("prefix", "strings")
def _prefix(r: random.Random) -> Draft:
    w, s = r.choice(WORDS), r.choice(STR_NAMES)
    return Draft(("prefix", w), r.choice(["add_prefix", "prepend_word", "lead", "head_add", "begin"]),
                 [(s, "str")], "str",
                 r.choice([f'Return {s} with "{w}" added to the front.', f'Prepend "{w}" to {s} and return it.']),
                 f'    return "{w}" + {s}\n', lambda v: w + v, lambda g: (_word(g),))


@_template("repeat", "strings")
def _repeat(r: random.Random) -> Draft:
    c, s = r.randint(2, 6), r.choice(STR_NAMES)
    return Draft(("repeat", c), r.choice(["repeat", "echo", "copies", "duplicate", "multiply_text"]),
                 [(s, "str")], "str", f"Return {s} repeated {c} times.",
                 f"    return {s} * {c}\n", lambda v: v * c, lambda g: (_word(g, 1, 4),))


@_template("take_k", "strings")
def _take_k(r: random.Random) -> Draft:
    first, k, s = r.random() < 0.5, r.randint(1, 8), r.choice(STR_NAMES)
    if first:
        return Draft(("take_k", "first", k), r.choice(["head", "take_front", "first_chars", "prefix_of", "start_of"]),
                     [(s, "str")], "str", f"Return the first {k} characters of {s}.",
                     f"    return {s}[:{k}]\n", lambda v: v[:k], lambda g: (_word(g, max(1, k - 1), k + 4),),
                     ((_word(r, k + 2, k + 4),),))
    return Draft(("take_k", "last", k), r.choice(["tail", "take_back", "last_chars", "suffix_of", "end_of"]),
                 [(s, "str")], "str", f"Return the last {k} characters of {s}.",
                 f"    return {s}[-{k}:]\n", lambda v: v[-k:], lambda g: (_word(g, max(1, k - 1), k + 4),),
                 ((_word(r, k + 2, k + 4),),))


@_template("count_char", "strings")
def _count_char(r: random.Random) -> Draft:
    ch, s = r.choice(LETTERS), r.choice(STR_NAMES)
    alphabet = ch + "".join(r.sample([c for c in LETTERS if c != ch], 3))
    return Draft(("count_char", ch), r.choice(["count_letter", "occurrences", "tally", "how_many", "letter_count"]),
                 [(s, "str")], "int",
                 r.choice([f'Return how many times "{ch}" occurs in {s}.', f'Count the occurrences of "{ch}" in {s}.']),
                 f'    return {s}.count("{ch}")\n', lambda v: v.count(ch), lambda g: (_word(g, 1, 8, alphabet),))


@_template("replace_char", "strings")
def _replace_char(r: random.Random) -> Draft:
    a, b = r.sample(LETTERS, 2)
    s = r.choice(STR_NAMES)
    alphabet = a + "".join(r.sample([c for c in LETTERS if c not in (a, b)], 3))
    return Draft(("replace_char", a, b), r.choice(["swap_letters", "replace_char", "substitute", "convert", "patch"]),
                 [(s, "str")], "str", f'Return {s} with every "{a}" replaced by "{b}".',
                 f'    return {s}.replace("{a}", "{b}")\n', lambda v: v.replace(a, b),
                 lambda g: (_word(g, 1, 8, alphabet),), ((_word(r, 1, 3, alphabet) + a + _word(r, 0, 3, alphabet),),))


@_template("startswith", "strings")
def _startswith(r: random.Random) -> Draft:
    w, s = r.choice(WORDS), r.choice(STR_NAMES)
    return Draft(("startswith", w), r.choice(["starts_with", "has_prefix", "begins_with", "check_start", "is_led"]),
                 [(s, "str")], "bool", f'Return True if {s} starts with "{w}", otherwise False.',
                 f'    return {s}.startswith("{w}")\n', lambda v: v.startswith(w),
                 lambda g: ((w if g.random() < 0.5 else "") + _word(g, 1, 5),))


@_template("case_suffix", "strings")
def _case_suffix(r: random.Random) -> Draft:
    method, w, s = r.choice(["upper", "lower"]), r.choice(WORDS), r.choice(STR_NAMES)
    mixed = LETTERS[:8] + LETTERS[:8].upper()
    return Draft(("case_suffix", method, w), r.choice(["shout", "format_word", "style", "label", "tag"]),
                 [(s, "str")], "str", f'Return {s} in {method} case followed by "{w}".',
                 f'    return {s}.{method}() + "{w}"\n', lambda v: getattr(v, method)() + w,
                 lambda g: (_word(g, 1, 6, mixed),))


@_template("reverse_repeat", "strings")
def _reverse_repeat(r: random.Random) -> Draft:
    c, s = r.randint(1, 4), r.choice(STR_NAMES)
    doc = f"Return {s} reversed." if c == 1 else f"Return {s} reversed and repeated {c} times."
    body = f"    return {s}[::-1]\n" if c == 1 else f"    return {s}[::-1] * {c}\n"
    return Draft(("reverse_repeat", c), r.choice(["mirror", "flip", "backwards", "reverse_text", "invert"]),
                 [(s, "str")], "str", doc, body, lambda v: v[::-1] * c, lambda g: (_word(g, 2, 6),))


# --- lists ------------------------------------------------------------------------------------------------------


@_template("map_op", "lists")
def _map_op(r: random.Random) -> Draft:
    op, xs = r.choice(["+", "-", "*"]), r.choice(LIST_NAMES)
    c = r.randint(2 if op == "*" else 1, 12)  # "* 1" would be the identity
    doc = {"+": f"Return a list with {c} added to each element of {xs}.",
           "-": f"Return a list with {c} subtracted from each element of {xs}.",
           "*": f"Return a list with each element of {xs} multiplied by {c}."}[op]
    fn = {"+": lambda v: [x + c for x in v], "-": lambda v: [x - c for x in v], "*": lambda v: [x * c for x in v]}[op]
    return Draft(("map_op", op, c), r.choice(["transform_all", "apply_each", "map_values", "adjust", "convert_all"]),
                 [(xs, "list[int]")], "list[int]", doc, f"    return [x {op} {c} for x in {xs}]\n", fn,
                 lambda g: (_ints(g, 1, 6),))


@_template("filter_cmp", "lists")
def _filter_cmp(r: random.Random) -> Draft:
    cmp, c, xs = r.choice(list(CMPS)), r.randint(1, 15), r.choice(LIST_NAMES)
    word, f = CMPS[cmp]
    return Draft(("filter_cmp", cmp, c), r.choice(["keep_some", "select", "filter_values", "pick", "sieve"]),
                 [(xs, "list[int]")], "list[int]", f"Return the elements of {xs} that are {word} {c}, in order.",
                 f"    return [x for x in {xs} if x {cmp} {c}]\n", lambda v: [x for x in v if f(x, c)],
                 lambda g: (_ints(g, 1, 7, near=c),),
                 (([c + 1, r.randint(0, 20), c],),))


@_template("count_cmp", "lists")
def _count_cmp(r: random.Random) -> Draft:
    cmp, c, xs = r.choice(list(CMPS)), r.randint(1, 15), r.choice(LIST_NAMES)
    word, f = CMPS[cmp]
    return Draft(("count_cmp", cmp, c), r.choice(["count_if", "how_many", "tally_values", "number_of", "count_matching"]),
                 [(xs, "list[int]")], "int", f"Return how many elements of {xs} are {word} {c}.",
                 f"    return len([x for x in {xs} if x {cmp} {c}])\n", lambda v: sum(1 for x in v if f(x, c)),
                 lambda g: (_ints(g, 1, 7, near=c),),
                 (([c, r.randint(0, 20), c + 1],),))


@_template("agg_plus", "lists")
def _agg_plus(r: random.Random) -> Draft:
    agg, c, xs = r.choice(["sum", "max", "min", "len"]), r.randint(1, 20), r.choice(LIST_NAMES)
    what = {"sum": "the sum of", "max": "the largest element of", "min": "the smallest element of",
            "len": "the length of"}[agg]
    fn = {"sum": sum, "max": max, "min": min, "len": len}[agg]
    return Draft(("agg_plus", agg, c), r.choice(["total_shift", "summary", "aggregate", "score", "measure"]),
                 [(xs, "list[int]")], "int", f"Return {what} {xs} plus {c}.", f"    return {agg}({xs}) + {c}\n",
                 lambda v: fn(v) + c, lambda g: (_ints(g, 1, 6),))


@_template("index_k", "lists")
def _index_k(r: random.Random) -> Draft:
    k, xs = r.choice([0, 1, 2, 3, -1, -2]), r.choice(LIST_NAMES)
    return Draft(("index_k", k), r.choice(["get_item", "element_at", "pick_one", "nth", "at_index"]),
                 [(xs, "list[int]")], "int", f"Return the element of {xs} at index {k}.",
                 f"    return {xs}[{k}]\n", lambda v: v[k], lambda g: (_ints(g, 5, 7),))


@_template("sorted_k", "lists")
def _sorted_k(r: random.Random) -> Draft:
    k, big, xs = r.randint(1, 4), r.random() < 0.5, r.choice(LIST_NAMES)
    doc = (f"Return the {k} largest elements of {xs} in decreasing order." if big
           else f"Return the {k} smallest elements of {xs} in increasing order.")
    body = f"    return sorted({xs}, reverse=True)[:{k}]\n" if big else f"    return sorted({xs})[:{k}]\n"
    return Draft(("sorted_k", big, k), r.choice(["top_values", "best", "extremes", "rank_pick", "first_sorted"]),
                 [(xs, "list[int]")], "list[int]", doc, body, lambda v: sorted(v, reverse=big)[:k],
                 lambda g: (_ints(g, 2, 7),),
                 (([r.randint(0, 20) for _ in range(k + 2)],),))


@_template("filter_map", "lists")
def _filter_map(r: random.Random) -> Draft:
    c, m, xs = r.randint(2, 5), r.randint(2, 9), r.choice(LIST_NAMES)
    return Draft(("filter_map", c, m), r.choice(["select_scale", "pick_and_scale", "sift", "process", "refine"]),
                 [(xs, "list[int]")], "list[int]",
                 f"Return the elements of {xs} that are divisible by {c}, each multiplied by {m}.",
                 f"    return [x * {m} for x in {xs} if x % {c} == 0]\n", lambda v: [x * m for x in v if x % c == 0],
                 lambda g: (_ints(g, 1, 7),), (([r.randint(1, 5), c * r.randint(1, 4)],),))


# --- dicts ------------------------------------------------------------------------------------------------------


@_template("get_default", "dicts")
def _get_default(r: random.Random) -> Draft:
    w, c, d = r.choice(WORDS), r.randint(0, 9), r.choice(DICT_NAMES)
    return Draft(("get_default", w, c), r.choice(["lookup", "fetch", "get_value", "read_key", "find"]),
                 [(d, "dict[str, int]")], "int", f'Return the value of key "{w}" in {d}, or {c} if the key is missing.',
                 f'    return {d}.get("{w}", {c})\n', lambda v: v.get(w, c), lambda g: (_dict(g, w),),
                 (({x: r.randint(0, 20) for x in r.sample([x for x in WORDS if x != w], 2)},),))


@_template("keys_cmp", "dicts")
def _keys_cmp(r: random.Random) -> Draft:
    cmp, c, d = r.choice([">", "<"]), r.randint(1, 15), r.choice(DICT_NAMES)
    word, f = CMPS[cmp]
    return Draft(("keys_cmp", cmp, c), r.choice(["keys_above", "select_keys", "filter_keys", "some_keys", "pick_keys"]),
                 [(d, "dict[str, int]")], "list[str]", f"Return the sorted keys of {d} whose value is {word} {c}.",
                 f"    return sorted([k for k, v in {d}.items() if v {cmp} {c}])\n",
                 lambda v: sorted(k for k, x in v.items() if f(x, c)), lambda g: (_dict(g, near=c),),
                 ((dict(zip(r.sample(WORDS, 3), [c, c + 1, r.randint(0, 20)], strict=True)),),))


@_template("map_values", "dicts")
def _map_values(r: random.Random) -> Draft:
    op, c, d = r.choice(["+", "*"]), r.randint(2, 9), r.choice(DICT_NAMES)
    doc = (f"Return a new dict with every value of {d} multiplied by {c}." if op == "*"
           else f"Return a new dict with {c} added to every value of {d}.")
    fn = (lambda v: {k: x * c for k, x in v.items()}) if op == "*" else (lambda v: {k: x + c for k, x in v.items()})
    return Draft(("map_values", op, c), r.choice(["scale_all", "update_values", "boost", "map_dict", "adjust_values"]),
                 [(d, "dict[str, int]")], "dict[str, int]", doc,
                 f"    return {{k: v {op} {c} for k, v in {d}.items()}}\n", fn, lambda g: (_dict(g),))


@_template("set_key", "dicts")
def _set_key(r: random.Random) -> Draft:
    w, c, d = r.choice(WORDS), r.randint(0, 20), r.choice(DICT_NAMES)
    return Draft(("set_key", w, c), r.choice(["with_key", "set_entry", "put", "assign", "store"]),
                 [(d, "dict[str, int]")], "dict[str, int]", f'Return a copy of {d} with key "{w}" set to {c}.',
                 f'    out = dict({d})\n    out["{w}"] = {c}\n    return out\n', lambda v: {**v, w: c},
                 lambda g: (_dict(g, w),))


# --- loops ------------------------------------------------------------------------------------------------------


@_template("loop_sum", "loops")
def _loop_sum(r: random.Random) -> Draft:
    c, n = r.randint(1, 9), r.choice(["n", "count", "limit", "k"])
    return Draft(("loop_sum", c), r.choice(["loop_sum", "accumulate", "running_total", "series", "sum_steps"]),
                 [(n, "int")], "int", f"Return the sum of i * {c} for every i from 0 up to {n} - 1, using a loop.",
                 f"    total = 0\n    for i in range({n}):\n        total += i * {c}\n    return total\n",
                 lambda v: sum(i * c for i in range(v)), lambda g: (g.randint(0, 12),))


@_template("count_in", "loops")
def _count_in(r: random.Random) -> Draft:
    chars, s = "".join(sorted(r.sample(LETTERS, 3))), r.choice(STR_NAMES)
    alphabet = chars + "".join(r.sample([c for c in LETTERS if c not in chars], 3))
    return Draft(("count_in", chars), r.choice(["count_special", "tally_chars", "char_count", "score_text", "matches"]),
                 [(s, "str")], "int", f'Count the characters of {s} that are one of "{chars}".',
                 f'    count = 0\n    for ch in {s}:\n        if ch in "{chars}":\n            count += 1\n'
                 "    return count\n",
                 lambda v: sum(1 for ch in v if ch in chars), lambda g: (_word(g, 1, 8, alphabet),))


@_template("product_from", "loops")
def _product_from(r: random.Random) -> Draft:
    c, xs = r.randint(1, 5), r.choice(LIST_NAMES)

    def oracle(v: list[int]) -> int:
        out = c
        for x in v:
            out *= x
        return out

    return Draft(("product_from", c), r.choice(["product", "multiply_all", "prod_from", "chain_mul", "fold_mul"]),
                 [(xs, "list[int]")], "int", f"Return {c} multiplied by every element of {xs}, using a loop.",
                 f"    result = {c}\n    for x in {xs}:\n        result *= x\n    return result\n", oracle,
                 lambda g: (_ints(g, 0, 4, 6),))


@_template("multiples", "loops")
def _multiples(r: random.Random) -> Draft:
    c, n = r.randint(2, 12), r.choice(["n", "count", "limit", "k"])
    return Draft(("multiples", c), r.choice(["multiples", "table", "times_table", "steps_of", "count_by"]),
                 [(n, "int")], "list[int]", f"Return a list of the first {n} multiples of {c}, starting with {c}.",
                 f"    out = []\n    for i in range(1, {n} + 1):\n        out.append(i * {c})\n    return out\n",
                 lambda v: [i * c for i in range(1, v + 1)], lambda g: (g.randint(0, 6),))


# --- conditionals -----------------------------------------------------------------------------------------------


@_template("threshold_label", "conditionals")
def _threshold_label(r: random.Random) -> Draft:
    c, (w1, w2), x = r.randint(0, 20), r.sample(WORDS, 2), r.choice(INT_NAMES)
    return Draft(("threshold_label", c, w1, w2), r.choice(["classify", "label", "judge", "grade", "describe"]),
                 [(x, "int")], "str", f'Return "{w1}" if {x} is greater than {c}, otherwise "{w2}".',
                 f'    if {x} > {c}:\n        return "{w1}"\n    return "{w2}"\n', lambda v: w1 if v > c else w2,
                 lambda g: (max(0, c + g.randint(-3, 3)) if g.random() < 0.7 else g.randint(0, 30),),
                 ((c,), (c + 1,)))


@_template("clamp", "conditionals")
def _clamp(r: random.Random) -> Draft:
    lo = r.randint(0, 10)
    hi, x = lo + r.randint(3, 15), r.choice(INT_NAMES)
    return Draft(("clamp", lo, hi), r.choice(["clamp", "limit", "bound", "restrict", "fit_range"]),
                 [(x, "int")], "int", f"Return {x} limited to the range {lo} to {hi}.",
                 f"    return max({lo}, min({x}, {hi}))\n", lambda v: max(lo, min(v, hi)),
                 lambda g: (g.choice([lo - 1, lo, lo + 1, hi - 1, hi, hi + 1]) if g.random() < 0.6
                            else g.randint(0, 30),), ((lo,), (hi + 1,)))


@_template("fizz", "conditionals")
def _fizz(r: random.Random) -> Draft:
    c, w, x = r.randint(2, 9), r.choice(WORDS), r.choice(INT_NAMES)
    return Draft(("fizz", c, w), r.choice(["fizz", "buzz_word", "say", "announce", "speak"]),
                 [(x, "int")], "str", f'Return "{w}" if {x} is divisible by {c}, otherwise {x} as a string.',
                 f'    if {x} % {c} == 0:\n        return "{w}"\n    return str({x})\n',
                 lambda v: w if v % c == 0 else str(v),
                 lambda g: (c * g.randint(1, 5) if g.random() < 0.5 else g.randint(1, 40),), ((c,),))


@_template("parity_shift", "conditionals")
def _parity_shift(r: random.Random) -> Draft:
    c, x = r.randint(1, 9), r.choice(INT_NAMES)
    return Draft(("parity_shift", c), r.choice(["nudge", "parity_step", "shift_by_parity", "wobble", "adjust"]),
                 [(x, "int")], "int", f"Return {x} plus {c} if {x} is even, otherwise {x} minus {c}.",
                 f"    if {x} % 2 == 0:\n        return {x} + {c}\n    return {x} - {c}\n",
                 lambda v: v + c if v % 2 == 0 else v - c, _int1, ((2,), (3,)))
