"""Streaming records with their line numbers, whatever the file looks like."""

from __future__ import annotations

import json

import pytest

from app.ingest.record_files import BadLine, MalformedFile, Record, read_records


def test_json_array_records_carry_the_line_they_start_on(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('\ufeff[\n {"a": 1},\n {"b": "x\u2028y"}\n,\n\n{"c":\n [1,2]}]\n', encoding="utf-8")
    assert list(read_records(path)) == [Record(2, {"a": 1}), Record(3, {"b": "x\u2028y"}), Record(6, {"c": [1, 2]})]


def test_jsonl_splits_on_newline_only_and_reports_bad_lines(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a":1}\r\n{"b": "x\xe2\x80\xa8y"}\n\n{bad\n\xff\xfe{}\n{"c":2}')
    records = list(read_records(path))
    assert records[:2] == [Record(1, {"a": 1}), Record(2, {"b": "x\u2028y"})]
    assert isinstance(records[2], BadLine) and records[2].line == 4 and "not valid JSON" in records[2].reason
    assert records[3] == BadLine(5, "not valid UTF-8")
    assert records[4] == Record(6, {"c": 2})


def test_a_malformed_json_array_stops_with_its_line(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('[{"a": 1},\n\n{"a": tru}]')
    with pytest.raises(MalformedFile) as error:
        list(read_records(path))
    assert error.value.line == 3 and "not valid JSON" in error.value.message
    path.write_text('[{"a": 1} {"b": 2}]')
    with pytest.raises(MalformedFile, match="expected ',' or ']'"):
        list(read_records(path))
    path.write_text('[{"a": 1}] trailing')
    with pytest.raises(MalformedFile, match="after the closing"):
        list(read_records(path))


def test_records_spanning_read_windows_and_empty_arrays(tmp_path, monkeypatch):
    import app.ingest.record_files as records_module

    monkeypatch.setattr(records_module, "CHUNK_CHARS", 7)  # every record straddles windows
    rows = [{"id": k, "text": "line\n" * (k % 3)} for k in range(50)]
    path = tmp_path / "data.json"
    path.write_text(json.dumps(rows, indent=2))
    records = list(read_records(path))
    assert [r.data for r in records] == rows
    lines = path.read_text().splitlines()
    assert all(lines[r.line - 1].strip() == "{" for r in records)
    for name, text in [("empty.json", " [ ] "), ("empty.jsonl", "\n  \n"), ("nothing.json", "")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(MalformedFile, match=f"{name}:1: holds no records"):
            list(read_records(tmp_path / name))
    (tmp_path / "object.json").write_text(json.dumps({"instance_id": 1, "raw_output": "x"}, indent=2))
    with pytest.raises(MalformedFile, match="object.json:1: is one JSON object spread over several lines"):
        list(read_records(tmp_path / "object.json"))
