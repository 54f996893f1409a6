"""Read histories from files, whatever wrote them; write capsim's own format.

The formats are recognised by content, never by file extension, and a file
compressed with gzip (Porcupine ships some so) is read as what it holds:

- capsim JSON Lines: one op dict per line, ``{"process": 3, "type": "invoke", ...}``
  (a whole-file JSON array of op dicts is accepted too);
- Jepsen EDN histories, and Porcupine's kv format (the same): op maps,
  ``{:process 0, :type :invoke, :f :get, :key "3", :value nil}``, one per
  line or over several lines, with ``;`` comments anywhere; ``:time``
  (Jepsen's nanoseconds) becomes seconds. A keyword in a client op's key or
  value stays a :class:`~emulator.check.values.Keyword`, which is never a
  string (as in Clojure: ``:a`` and ``"a"`` are two keys, and a read of
  ``"a"`` does not see a write of ``:a``); anywhere else it is the plain
  string of its name (``:type :invoke`` is ``"invoke"``);
- Knossos's data files: the same maps inside one top-level vector or list,
  ``[{:process 0 ...} ...]``, often after ``;`` comments;
- Jepsen console logs as its etcd tests write them,
  ``INFO  jepsen.util - 3<TAB>:invoke<TAB>:cas<TAB>[1 4]``, with the
  columns separated by tabs or by spaces. Lines that are not operations are
  skipped. Such logs have no key: every op acts on one register, unless it
  holds independent keys (below). On a ``fail``/``info`` line a keyword in
  the value column (e.g. ``:timed-out``) is the error, not a value;
- in either EDN form and in a console log, Jepsen's independent keys: when
  every client op's value is a tuple ``[k v]`` (a cas's ``[k [from to]]``;
  a completion may have none: it takes its invoke's key and keeps its
  value) and none has a ``:key``, each op gets key ``k`` and value ``v``, so the
  checker splits the history by key as Jepsen's ``independent`` checker
  does (the console log of such a test prints each op's tuple, and that
  checker judged the test per key). Keys are told apart with Clojure's ``=``
  (:func:`~emulator.check.values.clojure_key`): ``1``, ``1.0`` and ``true``
  are three keys.

Every reader returns capsim's op dicts in a :class:`History` (a list that
also names the format it was read from): ``index`` is the op's position,
``time`` its virtual time in seconds (the position when the input has none).
The result is checked with :func:`emulator.check.ops.pair_ops`, so a
completion with no invoke is reported with its line number.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

from emulator.check.edn import LineIndex, line_of, parse_edn, parse_edn_items
from emulator.check.errors import EdnError, HistoryFormatError
from emulator.check.ops import NEMESIS, collector_paused, pair_ops
from emulator.check.values import Keyword, clojure_key, freeze, jsonable, show

__all__ = ["FORMATS", "History", "detect_format", "parse_history", "read_history", "write_jsonl"]

FORMATS = ("jsonl", "json", "edn", "edn-vector", "jepsen-log")
"""The formats :func:`detect_format` names."""


class History(list[dict[str, Any]]):
    """Op dicts read from a file; ``format`` names the format they were read from (see :data:`FORMATS`)."""

    format: str = "jsonl"


#: The largest op time in seconds (an int beyond it has no float, which the checker reads times as).
_MAX_TIME = sys.float_info.max
#: The most levels of lists and maps in an op's key or value (as the real transport takes in a message).
MAX_DEPTH = 100
_LOG_LINE = re.compile(r"jepsen\.util\s+-\s+(?P<rest>.*)$")
_LOG_PROCESS = re.compile(r"\d+|:nemesis")
_LOG_TYPES = ("invoke", "ok", "fail", "info")
_KNOWN = ("index", "time", "process", "type", "f", "key", "value", "node", "error")
_TIMEOUT_ERROR = 0  # Maelstrom's code for an indefinite timeout
_GZIP_MAGIC = b"\x1f\x8b"
_WHOLE_GZIP = "a complete gzip file (or the history uncompressed)"
_EXPECTED = (
    'a history: JSON Lines ({"process": 0, "type": "invoke", ...}), '
    "Jepsen or Knossos EDN ({:process 0, :type :invoke, ...}, or a vector of them) "
    "or a Jepsen log (INFO  jepsen.util - 0 :invoke :read nil)"
)


def read_history(path: str | Path | BinaryIO) -> list[dict[str, Any]]:
    """Read a history file in any supported format.

    Args:
        path: the file, or a binary stream to read to its end (``sys.stdin.buffer``);
            the format is detected from the content (gzip-compressed or not).

    Returns:
        The ops as capsim op dicts, in file order.

    Raises:
        HistoryFormatError: the content is not a history; the message names the
            file, the line, what was found there and what was expected.
        OSError: the file cannot be opened.
    """
    if isinstance(path, (str, PathLike)):
        text = _text(Path(path).read_bytes(), path)
    else:
        text = _text(path.read(), getattr(path, "name", "<stream>"))
        path = getattr(path, "name", "<stream>")
    with collector_paused():
        return parse_history(text, source=str(path))


def _text(data: bytes, path: Any) -> str:
    """The file's bytes as text, decompressed if gzip; the bytes are let go here, not held while the text is parsed.

    Raises:
        HistoryFormatError: a gzip file that does not decompress, or bytes that are not UTF-8.
    """
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise HistoryFormatError(path, None, f"a gzip file that does not decompress ({exc})", _WHOLE_GZIP) from None
    try:
        return data.decode("utf-8-sig")  # a byte-order mark, as some Windows editors write, is not part of the text
    except UnicodeDecodeError as exc:
        raise HistoryFormatError(path, None, f"bytes that are not UTF-8 (at byte {exc.start})", "UTF-8 text") from None


def parse_history(text: str, source: str = "<text>") -> History:
    """Parse history text in any supported format; see :func:`read_history`."""
    text = text.removeprefix("\ufeff")
    fmt = detect_format(text, source)
    if fmt == "json":
        ops, lines = _read_json_array(text, source)
    elif fmt in ("edn", "edn-vector"):
        ops, lines, fmt = _read_edn(text, source)
    else:
        reader = {"jsonl": _jsonl_op, "jepsen-log": _log_op}[fmt]
        ops, lines = _read_lines(text, source, reader)
    if not ops:
        raise HistoryFormatError(source, None, "no operations", _EXPECTED)
    originals = list(ops) if fmt == "json" else None  # an array's ops have no line to show: shown as read
    history = History(ops)
    del ops  # each op read is replaced by its normalized form, so the two are never all held at once
    try:
        for i, line in enumerate(lines):
            history[i] = _normalize(history[i], i, source, line)
        if fmt in _JEPSEN_FORMATS and _independent(history):
            _split_tuples(history)
        if fmt in _JEPSEN_FORMATS:
            _clojure_keys(history)
        history.format = fmt
        pair_ops(history, source, None if originals is not None else lines)
    except HistoryFormatError as exc:
        raise _as_written(exc, text, originals) from None
    if fmt in _JEPSEN_FORMATS:
        _complete(history, text, source, lines, fmt)
    return history


#: The formats Jepsen and Knossos write, read by their rules.
_JEPSEN_FORMATS = ("edn", "edn-vector", "jepsen-log")


def _complete(history: list[dict[str, Any]], text: str, source: str, lines: list[int], fmt: str) -> None:
    """Knossos's ``complete`` (of ``knossos.history``): an ``ok``'s value is its invoke's, a ``fail`` must have it.

    Jepsen and Knossos take what an op did from its ``ok``: a write invoked
    with 1 and acknowledged as a write of 2 wrote 2. (capsim's own histories
    and Porcupine's take a write's value from its invoke, where the client
    put it; their completions repeat it.) A ``fail`` whose value is not its
    invoke's (by Clojure's ``=``, after an independent history's split) is
    refused with its line, as Knossos refuses it: its ``complete`` asserts
    "invocation value ... and failure value ... don't match". Not in a Jepsen
    console log, which Knossos never reads: the Jepsen of those logs wrote an
    error in a ``fail`` line's value column (``:fail :read :timed-out``).
    Called after ``pair_ops``, so every completion has its invoke.

    Raises:
        HistoryFormatError: a ``fail`` whose value is not its invoke's (EDN only).
    """
    pending: dict[Any, dict[str, Any]] = {}
    for op, line in zip(history, lines):
        process = op["process"]
        if process == NEMESIS:
            continue
        if op["type"] == "invoke":
            pending[process] = op
            continue
        invoke = pending.pop(process, None)
        if invoke is None:
            continue
        if op["type"] == "ok":
            invoke["value"] = op["value"]
        elif op["type"] == "fail" and fmt != "jepsen-log" and freeze(op["value"]) != freeze(invoke["value"]):
            raise HistoryFormatError(
                source,
                line,
                _line_text(text, line),
                f"a :fail with its invoke's value, {show(invoke['value'])}, not {show(op['value'])} "
                "(Knossos refuses a failure whose value is not its invocation's)",
            )


def _clojure_keys(history: list[dict[str, Any]]) -> None:
    """Each client op's key in the form where keys differ as Clojure's ``=`` says (1, 1.0 and true: three)."""
    for op in history:
        if "key" in op and op["process"] != NEMESIS:
            op["key"] = clojure_key(op["key"])


def detect_format(text: str, source: str = "<text>") -> str:
    """Name the format of ``text``: one of :data:`FORMATS`.

    Raises:
        HistoryFormatError: the text is empty or in none of these formats.
    """
    lines = _first_lines(text)
    if not lines:
        raise HistoryFormatError(source, None, "an empty file", _EXPECTED)
    code = [(n, line) for n, line in lines if not line.startswith(";")]
    number, first = code[0] if code else lines[0]
    if first.startswith("{:") or first == "{}":
        return "edn"
    if first.startswith("{"):
        return "jsonl"
    if first.startswith("("):
        return "edn-vector"
    if first.startswith("["):
        after = "".join(line for _, line in code[:3])[1:].lstrip(" \t,")
        return "edn-vector" if after.startswith("{:") else "json"
    if any(_LOG_LINE.search(line) for _, line in lines[:200]):
        return "jepsen-log"
    raise HistoryFormatError(source, number, first, _EXPECTED)


def write_jsonl(history: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write ``history`` as capsim JSON Lines, one op per line; returns the path.

    JSON has no keywords: a keyword read from EDN is written as the string
    ``":a"``, so it stays apart from the string ``"a"`` (though not from a
    string ``":a"``).
    """
    target = Path(path)
    with target.open("w", encoding="utf-8") as out:
        for op in history:
            out.write(json.dumps(jsonable(op), ensure_ascii=False))
            out.write("\n")
    return target


def _read_lines(
    text: str, source: str, reader: Callable[[str, str, int], dict[str, Any] | None]
) -> tuple[list[dict[str, Any]], list[int]]:
    """Apply ``reader`` to every non-blank line; it returns an op dict or None to skip."""
    ops: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, line in enumerate(_iter_lines(text), 1):
        line = line.strip()
        if line:
            op = reader(line, source, number)
            if op is not None:
                ops.append(op)
                lines.append(number)
    return ops, lines


#: How much text :func:`_iter_lines` splits at a time (the lines of a whole file at once were its size again).
_CHUNK = 1 << 20
#: What :func:`detect_format` looks at: the first 200 lines that are not blank, and the first 3 that hold code.
_DETECT_LINES, _DETECT_CODE = 200, 3


def _iter_lines(text: str, chunk: int = _CHUNK) -> Iterator[str]:
    r"""The lines of ``text`` as ``text.splitlines()`` gives them, split about ``chunk`` characters at a time.

    Each chunk ends just after a ``\n``, which always ends a line (``\r\n``
    too), so the chunks' lines are the whole text's.
    """
    start = 0
    while start < len(text):
        cut = text.rfind("\n", start, start + chunk)
        if cut < 0:
            cut = text.find("\n", start + chunk)
        end = len(text) if cut < 0 else cut + 1
        yield from text[start:end].splitlines()
        start = end


def _first_lines(text: str) -> list[tuple[int, str]]:
    """The numbered, stripped lines :func:`detect_format` reads, from the start of ``text`` only."""
    lines: list[tuple[int, str]] = []
    code = 0
    for number, line in enumerate(_iter_lines(text, chunk=1 << 16), 1):
        line = line.strip()
        if line:
            lines.append((number, line))
            code += not line.startswith(";")
            if len(lines) >= _DETECT_LINES and code >= _DETECT_CODE:
                break
    return lines


def _json(text: str) -> Any:
    """``json.loads``, strict: NaN and Infinity (which Python's json takes) are refused, as JSON has neither.

    Raises:
        json.JSONDecodeError: not JSON.
        ValueError: NaN or Infinity, or an integer of more digits than Python converts (the message says which).
        RecursionError: nested deeper than the parser goes.
    """
    return _DECODE(text)


class _NotJson(ValueError):
    """NaN, Infinity or -Infinity: Python's json reads them, JSON has none."""


def _no_constant(name: str) -> Any:
    raise _NotJson(name)


#: One decoder for every line (``json.loads`` with an option builds a new one per call: a fifth of reading JSON Lines).
_DECODE = json.JSONDecoder(parse_constant=_no_constant).decode


def _json_problem(exc: ValueError | RecursionError) -> str:
    if isinstance(exc, RecursionError):
        return f"values nested at most {MAX_DEPTH} levels deep"
    if isinstance(exc, _NotJson):
        return f"JSON, which has no {exc} (write null, or the value as a string)"
    if "digits" in str(exc):
        return f"numbers of at most {sys.get_int_max_str_digits():,} digits"
    return str(exc)


def _read_json_array(text: str, source: str) -> tuple[list[dict[str, Any]], list[int]]:
    """Read a whole-file JSON array of op dicts."""
    try:
        ops = _json(text)
    except json.JSONDecodeError as exc:
        raise HistoryFormatError(
            source,
            exc.lineno,
            _line_text(text, exc.lineno)[:80],
            f"a JSON array of op objects ({exc.msg}), or an "
            "EDN vector of op maps such as [{:process 0, :type :invoke, ...}]",
        ) from None
    except (ValueError, RecursionError) as exc:
        raise HistoryFormatError(source, None, text.strip()[:80], _json_problem(exc)) from None
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise HistoryFormatError(source, 1, text.strip()[:80], "a JSON array of op objects")
    return ops, list(range(len(ops)))


def _jsonl_op(line: str, source: str, number: int) -> dict[str, Any]:
    """One capsim JSON Lines op."""
    try:
        op = _json(line)
    except json.JSONDecodeError as exc:
        raise HistoryFormatError(source, number, line, f"a JSON object ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise HistoryFormatError(source, number, line, _json_problem(exc)) from None
    if not isinstance(op, dict):
        raise HistoryFormatError(source, number, line, "a JSON object, one op per line")
    return op


def _read_edn(text: str, source: str) -> tuple[list[dict[str, Any]], list[int], str]:
    """Read EDN op maps: top-level ones, or the items of one top-level vector or list."""
    try:
        whole, items = parse_edn_items(text)
    except EdnError as exc:
        line = line_of(text, exc.column - 1)
        raise HistoryFormatError(source, line, _line_text(text, line), f"EDN op maps ({exc.reason})") from None
    ops, lines = [], []
    index = LineIndex(text)
    for value, offset in items:
        line = index.line(offset)
        if not isinstance(value, dict):
            raise HistoryFormatError(
                source, line, _line_text(text, line), "an EDN op map such as {:process 0, :type :invoke, ...}"
            )
        op = _edn_op(value)
        if isinstance(op.get("time"), int) and not isinstance(op["time"], bool):
            try:
                op["time"] = op["time"] / 1e9
            except OverflowError:
                raise HistoryFormatError(
                    source, line, _line_text(text, line)[:80], "a :time in nanoseconds that a float holds"
                ) from None
        ops.append(op)
        lines.append(line)
    return ops, lines, "edn-vector" if whole else "edn"


def _edn_op(value: dict[Any, Any]) -> dict[str, Any]:
    """An EDN op map with its fields named by plain strings, and every keyword a string but in a client's key and value.

    ``{:process 0, :type :invoke, :f :write, :value :a}`` becomes
    ``{"process": 0, "type": "invoke", "f": "write", "value": Keyword("a")}``:
    the fields that name things (type, f, process, error) keep the strings
    they always were, and the key and value keep what Clojure tells apart.
    """
    op = {}
    for k, v in value.items():
        name = k.name if type(k) is Keyword else str(k)
        op[name] = _names(v) if type(v) in _NAMED and name not in _COMPARED else v
    if op.get("process") == NEMESIS and "value" in op:
        op["value"] = _names(op["value"])
    return op


#: The fields of a client op that are compared as Clojure compares them (a keyword stays a keyword there).
_COMPARED = ("key", "value")
_NAMED = (Keyword, list, dict)  # the types :func:`_names` changes (a number or a string it returns as it is)


def _names(value: Any) -> Any:
    """``value`` with every keyword as the plain string of its name, in lists and maps too."""
    kind = type(value)
    if kind is Keyword:
        return value.name
    if kind is list:
        return [_names(v) for v in value]
    if kind is dict:
        return {_names(k): _names(v) for k, v in value.items()}
    return value


def _independent(history: list[dict[str, Any]]) -> bool:
    """Whether the client ops hold Jepsen's independent tuples: every value ``[k v]``, no key of their own.

    A cas's ``v`` is then ``[from to]``, so a plain cas history (``[from to]``,
    ``to`` a scalar) is not taken for one, nor a register whose reads are
    invoked with nil.
    """
    clients = [op for op in history if op["process"] != NEMESIS]
    return any(op["value"] is not None for op in clients) and all(
        "key" not in op
        and (
            (op["type"] != "invoke" and not _is_pair(op["value"]))  # a completion with no tuple: its invoke's key
            or (_is_pair(op["value"]) and (op.get("f") != "cas" or _is_pair(op["value"][1])))
        )
        for op in clients
    )


def _split_tuples(history: list[dict[str, Any]]) -> None:
    """Each client op's ``[k v]`` as key ``k`` and value ``v``; a completion with no tuple takes its invoke's key.

    Such a completion (an ``info`` with a nil value, or an ``ok`` whose client
    left the tuple out) keeps its value. Jepsen's ``independent`` checker
    gives an op with no tuple to every key's subhistory: in its invoke's key
    it is read as here, and in any other Knossos finds no invoke for it (see
    ``docs/checker-outcomes.md``). An invoke always has a tuple in such a
    history (:func:`_independent` asks it: a register whose reads are invoked
    with nil is no independent history).
    """
    pending: dict[Any, dict[str, Any]] = {}
    for op in history:
        if op["process"] == NEMESIS:
            continue
        if op["type"] == "invoke" or _is_pair(op["value"]):
            op["key"], op["value"] = op["value"]
        if op["type"] == "invoke":
            pending[op["process"]] = op
            continue
        invoke = pending.pop(op["process"], None)
        if invoke is None:
            continue  # pair_ops says what is wrong with it
        if "key" not in op:
            op["key"] = invoke["key"]


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2


def _line_text(text: str, line: int) -> str:
    """The text of a 1-based line, stripped ("" past the last line)."""
    if line < 1:
        return ""
    return next(itertools.islice(_iter_lines(text), line - 1, None), "").strip()


def _as_written(exc: HistoryFormatError, text: str, originals: list[Any] | None) -> HistoryFormatError:
    """``exc`` showing the op as the input has it: its line's text (an array's op: its JSON and its position).

    The op dicts an error is found in have been normalized (an ``index``
    and a ``time`` added, Jepsen's keywords renamed): not what the user wrote.
    """
    if exc.line is None:
        return exc
    if originals is not None:
        op = originals[exc.line]
        shown = json.dumps(jsonable(op), ensure_ascii=False) if isinstance(op, dict) else repr(op)
        return HistoryFormatError(exc.path, None, f"op {exc.line + 1} of the array, {shown}", exc.expected)
    return HistoryFormatError(exc.path, exc.line, _line_text(text, exc.line), exc.expected)


def _log_op(line: str, source: str, number: int) -> dict[str, Any] | None:
    """One Jepsen console log line, or None for a log line that is not an operation."""
    match = _LOG_LINE.search(line)
    if match is None:
        return None
    cols = _columns(match.group("rest"))
    if len(cols) < 3 or not _LOG_PROCESS.fullmatch(cols[0].strip()) or cols[1].strip()[1:] not in _LOG_TYPES:
        return None
    try:
        parsed = [parse_edn(col) for col in cols[:4] if col.strip()]
        extra: list[Any] = [str(_names(parse_edn(col))) for col in cols[4:] if col.strip()]
    except EdnError as exc:
        raise HistoryFormatError(source, number, line, f"EDN columns separated by tabs or spaces ({exc})") from None
    process, kind, f = _names(parsed[0]), _names(parsed[1]), _names(parsed[2])
    value = parsed[3] if len(parsed) > 3 else None
    if process == NEMESIS:
        value = _names(value)
    op = {"process": process, "type": kind, "f": f, "value": value}
    if kind in ("fail", "info") and _is_keyword(cols, 3):
        op["value"], extra = None, [_names(value), *extra]
    if extra:
        code = _TIMEOUT_ERROR if extra[0] == "timed-out" else None
        op["error"] = [code, " ".join(str(e) for e in extra)]
    return op


def _columns(rest: str) -> list[str]:
    """A log line's columns: split at tabs, or else at spaces outside brackets and strings."""
    if "\t" in rest:
        return rest.split("\t")
    cols, start, depth, quoted, escaped = [], 0, 0, False, False
    for i, ch in enumerate(rest):
        if quoted:
            quoted, escaped = (escaped or ch != '"'), (ch == "\\" and not escaped)
        elif ch == '"':
            quoted = True
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch.isspace() and depth <= 0:
            if i > start:
                cols.append(rest[start:i])
            start = i + 1
    if start < len(rest):
        cols.append(rest[start:])
    return cols


def _is_keyword(cols: list[str], i: int) -> bool:
    """True when column ``i`` exists and holds an EDN keyword such as ``:timed-out``."""
    return len(cols) > i and cols[i].strip().startswith(":")


def _normalize(op: dict[str, Any], index: int, source: str, line: int) -> dict[str, Any]:
    """Rewrite an op into capsim's key order with ``index`` and ``time`` set."""
    time = op.get("time")
    if time is None:
        time = float(index)
    elif type(time) not in (float, int) and (isinstance(time, bool) or not isinstance(time, (int, float))):
        raise HistoryFormatError(source, line, repr(op), "a number of seconds as the op's time")
    if (time != time or time in (math.inf, -math.inf)) or (type(time) is not float and abs(time) > _MAX_TIME):
        raise HistoryFormatError(source, line, repr(op)[:80], "a finite number of seconds as the op's time")
    for name in ("key", "value"):
        if isinstance(op.get(name), _CONTAINERS) and _depth(op[name]) > MAX_DEPTH:
            raise HistoryFormatError(source, line, repr(op)[:80], f"a {name} nested at most {MAX_DEPTH} levels deep")
    out: dict[str, Any] = {"index": index, "time": time}
    for name in _FIELDS:
        value = op.get(name, out)  # ``out``: a default no op holds
        if value is not out:
            out[name] = value
    known = len(out) - 2 + ("time" in op) + ("index" in op)
    if "value" not in out:
        out["value"] = None
    if len(op) > known:  # fields of its own: kept after capsim's
        for name, value in op.items():
            if name not in out and name != "index":
                out[name] = value
    return out


_FIELDS = _KNOWN[2:]  # the fields :func:`_normalize` puts after index and time, in this order
_CONTAINERS = (dict, list, tuple, set, frozenset)


def _depth(value: object) -> int:
    """Levels of lists, tuples, dicts and sets in ``value``, up to MAX_DEPTH + 1, without recursion.

    ``emulator.validate.nesting`` does the same; this package imports only the standard library and itself.
    """
    if not isinstance(value, _CONTAINERS):
        return 0  # most keys and values: no list to walk
    level, frontier = 0, [value]
    while level <= MAX_DEPTH:
        containers = [item for item in frontier if isinstance(item, _CONTAINERS)]
        if not containers:
            break
        level += 1
        frontier = [child for c in containers for child in (c.values() if isinstance(c, dict) else c)]
    return level
