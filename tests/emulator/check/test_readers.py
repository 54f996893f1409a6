"""Tests of emulator/check/readers.py: format detection, the three readers, write_jsonl."""

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.check.errors import HistoryFormatError
from emulator.check.readers import detect_format, parse_history, read_history, write_jsonl

EDN = """\
{:process 0, :type :invoke, :f :put, :key "k", :value "x"}
{:process 1, :type :invoke, :f :get, :key "k", :value nil}
{:process 0, :type :ok, :f :put, :key "k", :value "x"}
{:process 1, :type :ok, :f :get, :key "k", :value "x"}
"""

LOG = """\
2017-03-01 12:00:00,000 INFO  jepsen.core - Running test
INFO  jepsen.util - 3\t:invoke\t:cas\t[1 4]
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 3\t:fail\t:cas\t[1 4]
INFO  jepsen.util - 0\t:fail\t:read\t:timed-out
INFO  jepsen.util - :nemesis\t:info\t:start\tnil
INFO  jepsen.util - 4\t:invoke\t:write\t2
INFO  jepsen.util - 4\t:info\t:write\t:timed-out
INFO  jepsen.util - 5\t:invoke\t:read\tnil
INFO  jepsen.util - 5\t:ok\t:read\t2
"""


def _write(tmp_path, text, name="history.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_edn_history_reads_into_capsim_ops(tmp_path):
    """An EDN history becomes capsim op dicts with index and time set to the position."""
    ops = read_history(_write(tmp_path, EDN))
    assert ops[0] == {"index": 0, "time": 0.0, "process": 0, "type": "invoke", "f": "put", "key": "k", "value": "x"}
    assert [op["type"] for op in ops] == ["invoke", "invoke", "ok", "ok"]
    assert ops[3]["value"] == "x" and ops[3]["index"] == 3


def test_edn_time_in_nanoseconds_becomes_seconds():
    """Jepsen's integer :time (nanoseconds) is converted to seconds; extra keys are kept."""
    text = "{:process 0, :type :invoke, :f :read, :value nil, :time 1500000000, :index 9, :extra [1]}\n"
    (op,) = parse_history(text)
    assert op["time"] == 1.5 and op["index"] == 0 and op["extra"] == [1]


def test_jepsen_log_lines_read_with_errors_and_nemesis(tmp_path):
    """Console log lines become ops; :timed-out columns become errors; other lines are skipped."""
    ops = read_history(_write(tmp_path, LOG))
    assert len(ops) == 9
    assert ops[0] == {"index": 0, "time": 0.0, "process": 3, "type": "invoke", "f": "cas", "value": [1, 4]}
    assert ops[2]["type"] == "fail" and ops[2]["value"] == [1, 4] and "error" not in ops[2]
    assert ops[3]["value"] is None and ops[3]["error"] == [0, "timed-out"]
    assert ops[4]["process"] == "nemesis" and ops[4]["f"] == "start"
    assert ops[6]["type"] == "info" and ops[6]["error"] == [0, "timed-out"]
    assert all("key" not in op for op in ops)


def test_jepsen_log_extra_columns_join_the_error():
    """Columns after the value are kept as the error text."""
    text = "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:fail\t:read\tnil\t:not-found\n"
    ops = parse_history(text)
    assert ops[1]["error"] == [None, "not-found"]


def test_jsonl_round_trips_through_write_jsonl(tmp_path, history):
    """write_jsonl then read_history gives back the same ops."""
    ops = history().op(1, "write", 3, key="a", node="n1").op(2, "read", None, 3, key="a").ops
    path = write_jsonl(ops, tmp_path / "h.jsonl")
    assert read_history(path) == ops
    assert json.loads(path.read_text().splitlines()[0])["node"] == "n1"


def test_jsonl_without_time_uses_the_position():
    """A JSON Lines op with no time gets its position as time."""
    ops = parse_history(
        '{"process": 0, "type": "invoke", "f": "read"}\n\n{"process": 0, "type": "ok", "f": "read", "value": 1}'
    )
    assert [(op["index"], op["time"]) for op in ops] == [(0, 0.0), (1, 1.0)]
    assert ops[0]["value"] is None


def test_a_json_array_is_accepted():
    """A whole-file JSON array of op dicts reads like JSON Lines."""
    text = json.dumps([{"process": 0, "type": "invoke", "f": "read"}, {"process": 0, "type": "ok", "f": "read"}])
    assert len(parse_history(text)) == 2


@pytest.mark.parametrize(
    "text, fmt",
    [
        ('{"process": 0}', "jsonl"),
        ("{:process 0}", "edn"),
        ("[]", "json"),
        ("foo\nINFO  jepsen.util - 0\t:invoke\t:read\tnil", "jepsen-log"),
    ],
)
def test_format_is_detected_from_content(text, fmt):
    """The format is chosen by content, whatever the file is called."""
    assert detect_format(text) == fmt


def test_detection_ignores_the_extension(tmp_path):
    """An EDN history in a file named .jsonl still reads as EDN."""
    assert len(read_history(_write(tmp_path, EDN, "misnamed.jsonl"))) == 4


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "found an empty file"),
        ("hello world\n", r":1: expected a history.*found hello world"),
        ('{"process": 0, "type": "invoke", "f": "read"}\n{"process": 0, "type"\n', r":2: expected a JSON object"),
        ('{"process": 0, "type": "invoke", "f": "read"}\n[1, 2]\n', r":2: expected a JSON object, one op per line"),
        (
            "{:process 0, :type :invoke, :f :read}\n{:process 0 :type}\n",
            r":2: expected EDN op maps \(a map needs an even number of forms",
        ),
        ("{:process 0, :type :invoke, :f :read}\n[1 2]\n", r":2: expected an EDN op map such as .*, found \[1 2\]"),
        ('{"process": 0, "type": "begin", "f": "read"}', r":1: expected a type in invoke, ok, fail, info"),
        ('{"type": "invoke", "f": "read"}', r":1: expected a process"),
        ('{"process": 0, "type": "invoke"}', r":1: expected an f"),
        ('{"process": 0, "type": "ok", "f": "read"}', r":1: expected an invoke of process 0 before its ok"),
        ('{"process": 0, "type": "invoke", "f": "read", "time": "noon"}', r":1: expected a number of seconds"),
        ("INFO  jepsen.util - 0\t:invoke\t:cas\t[1 4\n", r":1: expected EDN columns separated by tabs or spaces"),
        ("INFO  jepsen.util - starting up\n", "found no operations"),
        ("[1, 2", "expected a JSON array of op objects"),
        # Each of these ended in a bare traceback (RecursionError, ValueError) or was taken as a value:
        (
            '{"process": 0, "type": "invoke", "f": "write", "value": ' + "[" * 500 + "]" * 500 + "}",
            r":1: expected a value nested at most 100",
        ),
        (
            '{"process": 0, "type": "invoke", "f": "write", "value": ' + "[" * 3000 + "]" * 3000 + "}",
            r":1: expected values nested at most 100",
        ),
        (
            "{:process 0 :type :invoke :f :write :value " + "[" * 300 + "]" * 300 + "}",
            r":1: expected a value nested at most 100",
        ),
        (
            '{"process": 0, "type": "invoke", "f": "write", "value": ' + "9" * 5000 + "}",
            r":1: expected numbers of at most 4,300 digits",
        ),
        (
            "[" + '{"process": 0, "type": "invoke", "f": "write", "value": ' + "9" * 5000 + "}]",
            r"expected numbers of at most 4,300",
        ),
        (
            "{:process 0 :type :invoke :f :write :value " + "9" * 5000 + "}",
            r":1: expected EDN op maps \(an integer of more than 4,300",
        ),
        (
            "INFO  jepsen.util - 1\t:invoke\t:write\t" + "9" * 5000,
            r":1: expected EDN columns .*an integer of more than 4,300",
        ),
        ('{"process": 0, "type": "invoke", "f": "write", "value": NaN}', r":1: expected JSON, which has no NaN"),
        ('{"process": 0, "type": "invoke", "f": "write", "value": 1, "time": -Infinity}', r"which has no -Infinity"),
        ("{:process 0 :type :invoke :f :write :value 1 :time ##NaN}", r":1: expected EDN op maps"),
        (
            '{"process": 0, "type": "invoke", "f": "write", "key": 0, "value": 1}\n'
            '{"process": 0, "type": "ok", "f": "write", "key": 5, "value": 1}',
            r":2: expected key 0 as in its invoke \(or none\)",
        ),
    ],
)
def test_junk_is_rejected_naming_file_line_found_and_expected(tmp_path, text, message):
    """Unreadable input raises HistoryFormatError naming the file, the line, what was found and expected."""
    path = _write(tmp_path, text, "junk.log")
    with pytest.raises(HistoryFormatError, match=message) as info:
        read_history(path)
    assert str(info.value).startswith(str(path))


def test_a_second_invoke_while_one_is_in_flight_names_both(tmp_path):
    """Two invokes of one process without a completion between them are rejected."""
    text = '{"process": 5, "type": "invoke", "f": "read"}\n{"process": 5, "type": "invoke", "f": "read"}\n'
    with pytest.raises(HistoryFormatError, match=r":2: expected a completion of process 5's op invoked at line 1"):
        read_history(_write(tmp_path, text))


def test_binary_junk_is_rejected_as_not_utf8(tmp_path):
    """Bytes that are not UTF-8 give a format error, not a UnicodeDecodeError."""
    path = tmp_path / "bin"
    path.write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(HistoryFormatError, match="expected UTF-8 text"):
        read_history(path)


def test_history_format_error_is_a_value_error():
    """Callers can catch format errors as ValueError."""
    assert issubclass(HistoryFormatError, ValueError)


def test_shared_kv_histories_read(kv_histories):
    """Every shared Porcupine history reads, all ops paired."""
    for path, _ in kv_histories.values():
        ops = read_history(path)
        assert ops and sum(op["type"] == "invoke" for op in ops) == sum(op["type"] == "ok" for op in ops)


KNOSSOS = """\
; This used to expose a bug
; (two comment lines before the vector)
[{:process 4, :type :invoke, :f :write, :value 2}
 {:process 4, :type :ok, :f :write, :value 2}
 ; a comment between ops
 {:process :nemesis,
  :type :info,
  :f :start,
  :value
  "Cut off [:n3 #[:n4 :n5], :n2]"}
 {:process 6, :type :invoke, :f :read, :value nil}]
"""


def test_a_whole_file_edn_vector_with_comments_and_multiline_maps_reads(tmp_path):
    """Knossos's data files: one vector, ; comments, a map over several lines."""
    ops = read_history(_write(tmp_path, KNOSSOS, "knossos.edn"))
    assert ops.format == "edn-vector" and [op["process"] for op in ops] == [4, 4, "nemesis", 6]
    assert ops[2]["value"] == "Cut off [:n3 #[:n4 :n5], :n2]"


def test_an_edn_list_and_maps_over_several_lines_without_a_vector_read():
    """A top-level list is a history too; so are bare maps split over lines."""
    assert parse_history("(\n{:process 0, :type :invoke, :f :read, :value nil}\n)").format == "edn-vector"
    text = "{:process 0,\n :type :invoke, :f :read}\n{:process 0, :type :ok,\n :f :read, :value 1}\n"
    ops = parse_history(text)
    assert ops.format == "edn" and ops[1]["value"] == 1


def test_an_error_inside_an_edn_vector_names_its_line(tmp_path):
    """A bad op deep in a whole-file vector is reported at its own line."""
    text = "[{:process 0, :type :invoke, :f :read}\n {:process 0, :type :ok, :f :read}\n 42\n]"
    with pytest.raises(HistoryFormatError, match=r"knossos.edn:3: expected an EDN op map.*found 42"):
        read_history(_write(tmp_path, text, "knossos.edn"))
    with pytest.raises(HistoryFormatError, match=r"knossos.edn:2: expected EDN op maps \(.*never closed"):
        read_history(_write(tmp_path, "[{:process 0, :type :invoke, :f :read}\n {:process 0", "knossos.edn"))


def test_a_jepsen_log_with_spaces_reads_like_one_with_tabs():
    """Porcupine's etcd_100-102 logs pad the columns with spaces; [1 2] stays one column."""
    spaced = "INFO  jepsen.util - 4   :invoke :cas    [1 2]\nINFO  jepsen.util - 4   :fail   :cas    [1 2]\n"
    spaced += "INFO  jepsen.util - 0   :invoke :write  4\nINFO  jepsen.util - 0   :info   :write  :timed-out\n"
    tabbed = (
        spaced.replace("   ", "\t").replace("  ", "\t").replace(" :", "\t:").replace("jepsen.util\t", "jepsen.util ")
    )
    a, b = parse_history(spaced), parse_history(tabbed)
    assert a == b and a[0]["value"] == [1, 2] and a[3]["error"] == [0, "timed-out"] and a.format == "jepsen-log"


def test_porcupines_kv_format_reads(tmp_path):
    """Porcupine's test_data/kv/*.txt: Jepsen EDN maps, a get's invoke carrying nil."""
    text = '{:process 2, :type :invoke, :f :get, :key "0", :value nil}\n'
    text += '{:process 0, :type :invoke, :f :append, :key "8", :value "x 0 0 y"}\n'
    text += '{:process 2, :type :ok, :f :get, :key "0", :value ""}\n'
    ops = read_history(_write(tmp_path, text, "c50-bad.txt"))
    assert ops.format == "edn" and ops[2]["value"] == "" and ops[1]["key"] == "8"


def test_a_gzipped_history_reads_as_its_content(tmp_path):
    """Porcupine ships some histories gzipped: a gzip file (known by its magic bytes) reads as what it holds."""
    import gzip

    text = '{:process 0, :type :invoke, :f :get, :key "k", :value nil}\n'
    text += '{:process 0, :type :ok, :f :get, :key "k", :value ""}\n'
    plain, packed = tmp_path / "h.edn", tmp_path / "h.edn.gz"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    assert read_history(packed) == read_history(plain) and read_history(packed).format == "edn"
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(text.encode())[:30])
    with pytest.raises(HistoryFormatError, match=r"broken\.gz: expected a complete gzip file"):
        read_history(broken)


def test_the_etcd_logs_shipped_have_no_failed_write():
    """docs/checker-outcomes.md: none of the eight Porcupine etcd logs shipped holds a :fail :write."""
    from emulator.check import examples

    logs = sorted((Path(__file__).parent / "data" / "porcupine").glob("etcd_*.log"))
    logs.append(examples.path("jepsen-etcd-100-good"))
    assert len(logs) == 8
    ops = [op for log in logs for op in read_history(log)]
    assert not [op for op in ops if op["type"] == "fail" and op["f"] == "write"]
    assert [op for op in ops if op["type"] == "fail" and op["f"] == "cas"]  # failures are read, and kept


def test_the_kv_files_tested_leave_no_op_open(kv_histories):
    """docs/checker-outcomes.md: the kv files here leave no op open (Porcupine's open-get rule never applies)."""
    import gzip

    from emulator.check.ops import pair_ops

    c50 = Path(__file__).parent / "data" / "porcupine" / "c50-bad.txt.gz"
    texts = [path.read_text() for path, _ in kv_histories.values()] + [gzip.decompress(c50.read_bytes()).decode()]
    assert len(texts) == 5
    for text in texts:
        ops, _ = pair_ops(parse_history(text))
        assert ops and not [op for op in ops if op.status == "open"]


_INDEPENDENT = """\
{:type :invoke, :f :write, :value [0 3], :process 0}
{:type :ok, :f :write, :value [0 3], :process 0}
{:type :invoke, :f :cas, :value [0 [3 4]], :process 1}
{:type :ok, :f :cas, :value [0 [3 4]], :process 1}
{:type :info, :f :start, :value nil, :process :nemesis}
{:type :invoke, :f :read, :value [1 nil], :process 2}
{:type :ok, :f :read, :value [1 nil], :process 2}
{:type :invoke, :f :read, :value [0 nil], :process 2}
{:type :ok, :f :read, :value [0 READ], :process 2}
"""


def test_jepsens_independent_keys_read_as_keys():
    """Jepsen's independent tuples, [k v] in every client op's value, become key k and value v (its checker's split)."""
    from emulator.check import linearizable

    history = parse_history(_INDEPENDENT.replace("READ", "4"))
    assert [(op.get("key"), op["value"]) for op in history][:4] == [(0, 3), (0, 3), (0, [3, 4]), (0, [3, 4])]
    assert history[4]["value"] is None and "key" not in history[4]  # the nemesis op is left alone
    verdict = linearizable(history)
    assert verdict.valid is True and len(verdict.partitions) == 2
    assert linearizable(parse_history(_INDEPENDENT.replace("READ", "3"))).valid is False


@pytest.mark.parametrize(
    "text",
    [
        "{:type :invoke, :f :cas, :value [0 1], :process 0}\n{:type :ok, :f :cas, :value [0 1], :process 0}\n",
        "{:type :invoke, :f :write, :value [0 1], :process 0}\n{:type :ok, :f :write, :value [0 1], :process 0}\n"
        "{:type :invoke, :f :read, :value nil, :process 0}\n{:type :ok, :f :read, :value [0 1], :process 0}\n",
        '{:type :invoke, :f :put, :key "k", :value [0 "x"], :process 0}\n'
        '{:type :ok, :f :put, :key "k", :value [0 "x"], :process 0}\n',
    ],
    ids=["cas-of-scalars", "read-invoked-with-nil", "keyed"],
)
def test_values_that_are_pairs_are_not_taken_for_independent_keys(text):
    """A register of pairs, a plain cas history, or one with keys of its own keeps its values as they are."""
    history = parse_history(text)
    assert history[0]["value"] == [0, 1] or history[0]["value"] == [0, "x"]
    assert history[0].get("key") in (None, "k")


def test_an_independent_completion_with_no_value_takes_its_invokes_key():
    """Jepsen gives a completion with no tuple (an info read's nil) to every key; it pairs with its own invoke."""
    from emulator.check import linearizable

    crashed = "{:type :invoke, :f :read, :value [0 nil], :process 3}\n{:type :info, :f :read, :value nil, :process 3}\n"
    history = parse_history(_INDEPENDENT.replace("READ", "4") + crashed)
    assert [(op["key"], op["value"]) for op in history[-2:]] == [(0, None), (0, None)]
    verdict = linearizable(history)
    assert verdict.valid is True and len(verdict.partitions) == 2  # it was one unsplit register, NOT linearizable


@pytest.mark.parametrize("completion", ["nil", "5", ":timed-out"])
def test_a_completion_with_no_tuple_is_read_in_its_invokes_key_alone(completion):
    """docs/checker-outcomes.md: a completion whose value is no [k v] tuple pairs with its own invoke, takes its key
    and keeps its value; the other key is checked without it (Jepsen's subhistory gives it to every key, where
    Knossos finds no invoke for it). One such completion used to make a whole history one register of tuples."""
    from emulator.check import linearizable
    from emulator.check.values import Keyword

    text = (
        "{:process 0, :type :invoke, :f :write, :value [1 5]}\n{:process 0, :type :ok, :f :write, :value [1 5]}\n"
        "{:process 1, :type :invoke, :f :write, :value [2 7]}\n{:process 1, :type :ok, :f :write, :value [2 7]}\n"
        "{:process 2, :type :invoke, :f :read, :value [1 nil]}\n"
        f"{{:process 2, :type :{'info' if completion == ':timed-out' else 'ok'}, :f :read, :value {completion}}}\n"
    )
    history = parse_history(text)
    assert [op["key"] for op in history] == [1, 1, 2, 2, 1, 1]
    assert history[-1]["value"] == {"nil": None, "5": 5, ":timed-out": Keyword("timed-out")}[completion]
    verdict = linearizable(history, model="cas-register", stop_early=False)
    by_key = {p.key: p.valid for p in verdict.partitions}
    assert by_key == {1: completion != "nil", 2: True}  # a read of nil after the write of 5 is not linearizable


def test_in_jepsens_formats_an_ok_op_has_its_completions_value():
    """Knossos's history/complete: a write invoked with 1 and acknowledged as a write of 2 wrote 2. capsim's own
    JSON Lines keep the invoke's value (the client's), so the same ops there are not linearizable."""
    from emulator.check import linearizable

    edn = (
        "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :ok, :f :write, :value 2}\n"
        "{:process 1, :type :invoke, :f :read, :value nil}\n{:process 1, :type :ok, :f :read, :value 2}\n"
    )
    history = parse_history(edn)
    assert history[0]["value"] == 2 and linearizable(history).valid is True
    assert linearizable(parse_history(f"[{edn}]")).valid is True  # a Knossos data file, the same
    log = "".join(
        f"INFO  jepsen.util - {p}\t:{t}\t:{f}\t{v}\n"
        for p, t, f, v in [
            (0, "invoke", "write", 1),
            (0, "ok", "write", 2),
            (1, "invoke", "read", "nil"),
            (1, "ok", "read", 2),
        ]
    )
    assert linearizable(parse_history(log)).valid is True
    jsonl = "".join(
        json.dumps({"process": p, "type": t, "f": f, "value": v}) + "\n"
        for p, t, f, v in [
            (0, "invoke", "write", 1),
            (0, "ok", "write", 2),
            (1, "invoke", "read", None),
            (1, "ok", "read", 2),
        ]
    )
    assert linearizable(parse_history(jsonl)).valid is False


@pytest.mark.parametrize(
    "text",
    [
        "{:process 0, :type :invoke, :f :write, :value 1, :time " + "1" * 400 + "}\n",
        json.dumps({"process": 0, "type": "invoke", "f": "write", "value": 1, "time": int("1" * 400)}) + "\n",
    ],
    ids=["edn-nanoseconds", "jsonl-seconds"],
)
def test_a_time_no_float_holds_is_a_format_error(text):
    """A 400-digit time was an OverflowError traceback (exit 1, which means NOT linearizable): now the line's error."""
    with pytest.raises(HistoryFormatError, match=r"<text>:1: expected a .*time"):
        parse_history(text)


def test_a_byte_order_mark_is_not_part_of_a_history(tmp_path):
    """A JSON Lines file saved with a BOM (some Windows editors) reads as without it."""
    path = tmp_path / "bom.jsonl"
    line = json.dumps({"process": 0, "type": "invoke", "f": "write", "value": 1})
    path.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\n")
    assert read_history(path)[0]["value"] == 1
    assert parse_history("\ufeff" + line + "\n")[0]["value"] == 1


def test_a_vector_that_is_neither_json_nor_edn_op_maps_names_both():
    """[1 2 3] was 'expected a JSON array of op objects': the EDN vector it looks like is named too."""
    with pytest.raises(HistoryFormatError, match=r"or an EDN vector of op maps .* found \[1 2 3\]"):
        parse_history("[1 2 3]\n")


_KEYS = """\
{:type :invoke, :f :write, :value [:a 1], :process 0}
{:type :ok, :f :write, :value [:a 1], :process 0}
{:type :invoke, :f :write, :value ["a" 2], :process 1}
{:type :ok, :f :write, :value ["a" 2], :process 1}
{:type :invoke, :f :read, :value [:a nil], :process 0}
{:type :ok, :f :read, :value [:a READ], :process 0}
"""


def test_a_keyword_key_and_a_string_key_are_two_keys():
    """[:a v] and ["a" v] are two keys, as Jepsen's independent checker (Clojure's =) has them: a read of :a sees
    :a's write only. They were one key, where the read of 1 after the write of 2 was NOT linearizable."""
    from emulator.check import linearizable
    from emulator.check.values import Keyword

    history = parse_history(_KEYS.replace("READ", "1"))
    assert [op["key"] for op in history] == [Keyword("a"), Keyword("a"), "a", "a", Keyword("a"), Keyword("a")]
    verdict = linearizable(history)
    assert verdict.valid is True and [p.key for p in verdict.partitions] == [Keyword("a"), "a"]
    bad = linearizable(parse_history(_KEYS.replace("READ", "2")))
    assert (
        bad.valid is False
        and "key :a:" in bad.explain()
        and [p.to_dict()["key"] for p in bad.partitions]
        == [
            ":a",
            "a",
        ]
    )


@pytest.mark.parametrize("fmt", ["edn", "edn-vector", "jsonl"])
def test_keys_1_and_1_0_and_true_are_three_in_jepsens_formats_and_one_in_capsims(fmt):
    """Clojure's = tells 1, 1.0 and true apart, so Jepsen's formats have three keys; capsim's JSON Lines keep one,
    as its nodes' Python dicts do (the history writes 1 under three names, then reads it under one)."""
    from emulator.check import linearizable

    keys = [("1", 1), ("1.0", 1.0), ("true", True)]
    ops = [(p, t, "write", k, p) for p, (k, _) in enumerate(keys) for t in ("invoke", "ok")]
    ops += [(3, t, "read", "1", "nil" if t == "invoke" else 2) for t in ("invoke", "ok")]
    if fmt == "jsonl":
        names = dict(keys) | {"nil": None}
        text = "".join(
            json.dumps({"process": p, "type": t, "f": f, "key": names[k], "value": names.get(v, v)}) + "\n"
            for p, t, f, k, v in ops
        )
    else:
        text = "".join(f"{{:process {p}, :type :{t}, :f :{f}, :value [{k} {v}]}}\n" for p, t, f, k, v in ops)
        text = f"[{text}]" if fmt == "edn-vector" else text
    verdict = linearizable(parse_history(text), model="cas-register")
    assert (len(verdict.partitions), verdict.valid) == ((1, True) if fmt == "jsonl" else (3, False))


def test_a_keyword_value_is_not_its_string():
    """A read of "x" does not see a write of :x (Clojure's =; they were equal); a read of :x does, in EDN and in a
    Jepsen console log; the explanation tells them apart."""
    from emulator.check import linearizable

    edn = (
        "{:process 0, :type :invoke, :f :write, :value :x}\n{:process 0, :type :ok, :f :write, :value :x}\n"
        "{:process 1, :type :invoke, :f :read, :value nil}\n{:process 1, :type :ok, :f :read, :value READ}\n"
    )
    assert linearizable(parse_history(edn.replace("READ", ":x"))).valid is True
    verdict = linearizable(parse_history(edn.replace("READ", '"x"')))
    assert verdict.valid is False and 'read() -> "x"' in verdict.explain() and "write(:x) -> ok" in verdict.explain()
    log = "INFO  jepsen.util - 0\t:invoke\t:write\t:x\nINFO  jepsen.util - 0\t:ok\t:write\t:x\n"
    log += "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:ok\t:read\tREAD\n"
    assert linearizable(parse_history(log.replace("READ", ":x"))).valid is True
    assert linearizable(parse_history(log.replace("READ", '"x"'))).valid is False


def test_a_keyword_stays_one_in_a_client_ops_value_and_is_a_plain_string_elsewhere():
    """A client op's value keeps its keyword; :type, :f, :process :nemesis, :error, other fields and a nemesis op's
    value read as the strings they always were."""
    from emulator.check.values import Keyword

    text = (
        "{:process :nemesis, :type :info, :f :start, :value [:isolated {:n1 [:n2]}]}\n"
        "{:process 0, :type :invoke, :f :write, :value [:x {:y :z} 1], :tag :x}\n"
        "{:process 0, :type :fail, :f :write, :value [:x {:y :z} 1], :error [:timed-out :net]}\n"
    )
    nemesis, invoke, fail = parse_history(text)
    assert (
        nemesis["process"] == "nemesis" and nemesis["f"] == "start" and nemesis["value"] == ["isolated", {"n1": ["n2"]}]
    )
    assert invoke["value"] == [Keyword("x"), {Keyword("y"): Keyword("z")}, 1]
    assert invoke["type"] == "invoke" and invoke["f"] == "write" and invoke["tag"] == "x"
    assert fail["error"] == ["timed-out", "net"]
    assert all(type(v) is str for op in (nemesis, invoke, fail) for v in (op["type"], op["f"]))


_TOKENS = [":a", '"a"', "1", "1.0", "true"]  # five keys to Clojure's =, one or two to Python's ==
_VALUES = {None: "nil", 0: ":x", 1: '"x"'}  # nil and two values to Clojure's =, one to Python's ==


@pytest.mark.parametrize("fmt", ["edn", "log"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_independent_histories_over_clojure_keys_get_the_brute_force_verdict(brute, small_histories, fmt, data):
    """Random independent histories, in EDN and as a Jepsen console log, whose keys are :a, "a", 1, 1.0 and true and
    whose values are nil, :x and "x" get the verdict brute force gives with each of them a key or value of its own
    (Clojure's =). The log holds no error codes, so its fails are plain fails on both sides."""
    from emulator.check import linearizable

    choose = lambda xs: data.draw(st.sampled_from(xs))  # noqa: E731
    named = lambda v: None if v is None else _VALUES[v]  # noqa: E731  (the brute force's nil is None)
    reference, lines, keys = [], [], {}
    for op in small_histories(choose, "cas_register"):
        key = keys[op["process"]] = choose(_TOKENS) if op["type"] == "invoke" else keys[op["process"]]
        value = op["value"]
        edn = f"[{_VALUES[value[0]]} {_VALUES[value[1]]}]" if isinstance(value, list) else _VALUES[value]
        if fmt == "log":
            op = {k: v for k, v in op.items() if k != "error"}
            lines.append(f"INFO  jepsen.util - {op['process']}\t:{op['type']}\t:{op['f']}\t[{key} {edn}]")
        else:
            error = f", :error [{op['error'][0]} {json.dumps(op['error'][1])}]" if "error" in op else ""
            lines.append(
                f"{{:process {op['process']}, :type :{op['type']}, :f :{op['f']}, :value [{key} {edn}]{error}}}"
            )
        reference.append(
            {**op, "key": key, "value": [named(v) for v in value] if isinstance(value, list) else named(value)}
        )
    assert linearizable(parse_history("\n".join(lines) + "\n")).valid is brute(reference, "cas_register")


def test_a_console_log_of_independent_tuples_is_split_by_key_as_jepsen_checked_it():
    """Jepsen's console log prints each op's [k v] tuple, and its independent checker judged the test per key: the
    log reads as the EDN history does (a timed-out line's op on its invoke's key). Porcupine's etcd logs, whose
    reads are invoked with nil, stay one register."""
    from emulator.check import linearizable

    def log(read):
        lines = [
            "0\t:invoke\t:write\t[0 3]",
            "0\t:ok\t:write\t[0 3]",
            "1\t:invoke\t:cas\t[0 [3 4]]",
            "1\t:ok\t:cas\t[0 [3 4]]",
            ":nemesis\t:info\t:start\tnil",
            "2\t:invoke\t:read\t[1 nil]",
            "2\t:ok\t:read\t[1 nil]",
            "2\t:invoke\t:read\t[0 nil]",
            f"2\t:ok\t:read\t[0 {read}]",
            "3\t:invoke\t:write\t[1 5]",
            "3\t:info\t:write\t:timed-out",
        ]
        return "".join(f"INFO  jepsen.util - {line}\n" for line in lines)

    history = parse_history(log("4"))
    assert [(op.get("key"), op["value"]) for op in history][:4] == [(0, 3), (0, 3), (0, [3, 4]), (0, [3, 4])]
    assert history[-1]["key"] == 1 and history[-1]["error"] == [0, "timed-out"] and "key" not in history[4]
    verdict = linearizable(history)
    assert verdict.valid is True and [p.key for p in verdict.partitions] == [0, 1]
    assert linearizable(parse_history(log("3"))).valid is False
    shipped = Path(__file__).parent / "data" / "porcupine"
    assert all(not any("key" in op for op in read_history(path)) for path in sorted(shipped.glob("etcd_*.log")))


_FAILED = (
    "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :ok, :f :write, :value 1}\n"
    "{:process 1, :type :invoke, :f :cas, :value INVOKED}\n{:process 1, :type :fail, :f :cas, :value FAILED}\n"
)


@pytest.mark.parametrize(
    "invoked, failed",
    [("[1 2]", "[1 3]"), ("[1 2]", "nil"), ("[1 2]", "[1.0 2]"), ("[:a 2]", '["a" 2]'), ("[1 2]", "[true 2]")],
)
@pytest.mark.parametrize("vector", [False, True], ids=["edn", "edn-vector"])
def test_a_fail_whose_value_is_not_its_invokes_is_refused_with_its_line(invoked, failed, vector):
    """Knossos's history/complete asserts a :fail carries its invoke's value (by Clojure's =: 1.0 is not 1, :a
    not "a"); capsim refuses such a history too, naming the line, where it took the invoke's value silently. A
    Jepsen console log of the same ops, which Knossos never reads (its fail lines may hold an error in the value
    column), reads as before."""
    text = _FAILED.replace("INVOKED", invoked).replace("FAILED", failed)
    with pytest.raises(HistoryFormatError, match=r"^<text>:4: expected a :fail with its invoke's value, .*Knossos"):
        parse_history(f"[{text}]" if vector else text)
    parse_history(_FAILED.replace("INVOKED", invoked).replace("FAILED", invoked))  # its own value: read as ever
    log = [
        (0, "invoke", "write", "1"),
        (0, "ok", "write", "1"),
        (1, "invoke", "cas", invoked),
        (1, "fail", "cas", failed),
    ]
    assert len(parse_history("".join(f"INFO  jepsen.util - {p}\t:{t}\t:{f}\t{v}\n" for p, t, f, v in log))) == 4


def test_an_independent_fail_is_compared_with_its_invoke_within_its_key():
    """In an independent history the value compared is the one under the key (as in the key's subhistory Jepsen
    gives Knossos): [0 4] failing [0 3] is refused; a nil failing a read of [0 nil] is that read's nil."""
    invoke = "{:type :invoke, :f :VERB, :value [0 INVOKED], :process 3}\n"
    fail = "{:type :fail, :f :VERB, :value FAILED, :process 3}\n"

    def history(verb, invoked, failed):
        return _INDEPENDENT.replace("READ", "4") + (invoke + fail).replace("VERB", verb).replace(
            "INVOKED", invoked
        ).replace("FAILED", failed)

    with pytest.raises(HistoryFormatError, match=r":11: expected a :fail with its invoke's value, 3, not 4"):
        parse_history(history("write", "3", "[0 4]"))
    assert parse_history(history("write", "3", "[0 3]"))[-1]["value"] == 3
    assert parse_history(history("read", "nil", "nil"))[-1]["key"] == 0


class _NoWholeSplit(str):
    """A text that refuses to be split whole (its slices are plain str, and split as usual)."""

    def splitlines(self, keepends=False):
        raise AssertionError("the whole text was split into lines")


def test_detect_format_reads_only_the_first_lines():
    """detect_format splits only the start of the text, and allocates next to nothing for a 20 MB one."""
    import tracemalloc

    line = '{"process": 0, "type": "invoke", "f": "read", "key": 1, "value": null}\n'
    text = line * 300_000
    assert detect_format(_NoWholeSplit(text)) == "jsonl"
    tracemalloc.start()
    try:
        detect_format(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


@given(st.text(alphabet="ab ;{\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", max_size=60), st.integers(1, 8))
def test_lines_split_in_chunks_are_the_whole_texts(text, chunk):
    """_iter_lines gives exactly str.splitlines' lines, whatever the chunk size and the line breaks."""
    from emulator.check.readers import _iter_lines

    assert list(_iter_lines(text, chunk)) == text.splitlines()


@pytest.mark.parametrize(
    "text, line, shown",
    [
        (
            "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :invoke, :f :write, :value 2}\n",
            2,
            "{:process 0, :type :invoke, :f :write, :value 2}",
        ),
        ('{"process":0,"type":"ok","f":"read","value":null,"time":0}\n', 1, '{"process":0,"type":"ok"'),
        ('\n\n  {"process": 0, "type": "invoke", "f": "w", "time": "noon"}  \n', 3, '{"process": 0, "type": "invoke"'),
    ],
)
def test_a_bad_op_is_shown_as_its_line_reads(tmp_path, text, line, shown):
    """An op refused after it was read (unpaired, a bad time) is shown by its line's text, not as a Python dict."""
    with pytest.raises(HistoryFormatError) as info:
        read_history(_write(tmp_path, text))
    assert info.value.line == line and info.value.found.startswith(shown)
    assert "'index'" not in str(info.value)


def test_a_bad_op_of_a_json_array_is_shown_as_json_with_its_place(tmp_path):
    """In a whole-file JSON array (no line per op) the op is shown as JSON, with its place in the array."""
    text = '[{"process": 0, "type": "invoke", "f": "read"}, {"process": 1, "type": "ok", "f": "read"}]'
    with pytest.raises(HistoryFormatError, match=r'found op 2 of the array, \{"process": 1, "type": "ok"'):
        read_history(_write(tmp_path, text))
