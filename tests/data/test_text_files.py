"""Users' text files (claws.data.text_files): UTF-8 with or without a BOM, names kept as on disk."""

import csv
import os

from claws.data.text_files import open_text, read_text


def test_a_byte_order_mark_is_dropped_and_other_text_kept(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"\xef\xbb\xbfcaf\xc3\xa9\r\n\xef\xbb\xbfsecond\n")
    # only the leading BOM is the file's mark; one inside the text stays text
    assert read_text(path) == "caf\u00e9\n\ufeffsecond\n"
    path.write_bytes(b"plain\n")
    assert read_text(path) == "plain\n"


def test_bytes_that_are_not_utf8_read_as_os_fsdecode_gives_file_names(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"\xef\xbb\xbfcaf\xe9.mp4\n")
    assert read_text(path) == os.fsdecode(b"caf\xe9.mp4") + "\n"


def test_csv_header_of_a_file_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xef\xbb\xbfvideo,label\r\n\"a,b\",1\r\n")
    with open_text(path) as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{"video": "a,b", "label": "1"}]
