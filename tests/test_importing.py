"""CSV import: what a user sees for every kind of bad file, and that nothing is duplicated."""
import pytest

from candist_core.importing import ImportOptions, import_csv, read_table
from candist_core.records import CsvImportError
from candist_core.schema import build_schema


@pytest.fixture
def project(store):
    return store.create_project("p", build_schema("t", ["pos", "neg"]))


def write(tmp_path, content: bytes | str, name="in.csv"):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


GOLD = ImportOptions(gold_col="label")


def test_imports_texts_and_gold_labels(store, project, tmp_path):
    path = write(tmp_path, "text,label\ngood,pos\nbad,neg\n")
    report = import_csv(store, project.id, path, options=GOLD)
    assert (report.rows, report.imported, report.messages()) == (2, 2, [])
    assert [(s.text, s.gold) for s in store.samples(project.id)] == [("good", "pos"),
                                                                     ("bad", "neg")]


def test_reimporting_the_same_file_adds_nothing(store, project, tmp_path):
    path = write(tmp_path, "text\nsame\nsame\nother\n")
    assert import_csv(store, project.id, path).imported == 3
    again = import_csv(store, project.id, path)
    assert (again.imported, again.already_present) == (0, 3)
    assert store.count_samples(project.id) == 3


def test_id_column_gives_stable_ids(store, project, tmp_path):
    path = write(tmp_path, "id,text\n7,a\n8,b\n")
    import_csv(store, project.id, path, options=ImportOptions(id_col="id"))
    assert [s.ext_id for s in store.samples(project.id)] == ["7", "8"]


def test_utf8_bom_is_accepted(store, project, tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbftext\ncaf\xc3\xa9\n")
    report = import_csv(store, project.id, path)
    assert report.encoding == "utf-8-sig"
    assert store.samples(project.id)[0].text == "café"


def test_named_encoding_is_used(store, project, tmp_path):
    path = write(tmp_path, "text\ncafé\n".encode("cp1252"))
    import_csv(store, project.id, path, options=ImportOptions(encoding="cp1252"))
    assert store.samples(project.id)[0].text == "café"


def test_embedded_newlines_and_quotes_survive(store, project, tmp_path):
    path = write(tmp_path, 'text\n"line one\nline ""two"", end"\n')
    import_csv(store, project.id, path)
    assert store.samples(project.id)[0].text == 'line one\nline "two", end'


def test_gold_labels_match_case_insensitively(store, project, tmp_path):
    path = write(tmp_path, "text,label\na, POS \n")
    import_csv(store, project.id, path, options=GOLD)
    assert store.samples(project.id)[0].gold == "pos"


def test_problems_are_reported_and_the_rest_imported(store, project, tmp_path):
    long_text = "x" * 10_001
    path = write(tmp_path, f"id,text,label\n1,ok,pos\n2,  ,neg\n1,dup,pos\n3,hm,maybe\n"
                           f"4,{long_text},neg\n")
    report = import_csv(store, project.id, path,
                        options=ImportOptions(id_col="id", gold_col="label"))
    assert report.imported == 3
    assert report.messages() == [
        "1 row(s) with an empty text were skipped (rows 2).",
        "1 row(s) repeat an id seen earlier in the file and were skipped (ids 1).",
        "1 gold label(s) are not in the label schema and were dropped: 'maybe' x1.",
        "1 text(s) are longer than the limit and will be truncated by the student (rows 5).",
    ]
    assert {s.ext_id: s.gold for s in store.samples(project.id)} == {"1": "pos", "3": None,
                                                                     "4": "neg"}


def test_nul_bytes_are_removed_and_reported(store, project, tmp_path):
    path = write(tmp_path, b"text\nab\x00c\n")
    report = import_csv(store, project.id, path)
    assert store.samples(project.id)[0].text == "abc"
    assert report.messages() == ["1 NUL byte(s) were removed from the file."]


def test_a_one_megabyte_text_is_imported_whole(store, project, tmp_path):
    big = "word " * 200_000
    import_csv(store, project.id, write(tmp_path, f"text\n{big}\n"))
    assert store.samples(project.id)[0].text == big


@pytest.mark.parametrize("content, options, message", [
    (b"", ImportOptions(), "CSV file {p} is empty."),
    (b"\n\n  \n", ImportOptions(), "CSV file {p} is empty."),
    (b"text,label\n", ImportOptions(), "CSV file {p} has a header but no data rows."),
    (b"text\ncaf\xe9\n", ImportOptions(),
     "CSV file {p} is not UTF-8: invalid byte 0xe9 at offset 8. Save it as UTF-8, or name its "
     "encoding (for example --encoding cp1252 or --encoding latin-1)."),
    (b"text\nx\n", ImportOptions(encoding="klingon"), "Unknown encoding 'klingon'."),
    (b"body,label\nx,pos\n", ImportOptions(),
     "The text column 'text' is not in {p}. Columns found: 'body', 'label'."),
    (b"text;label\nx;pos\n", ImportOptions(),
     "The text column 'text' is not in {p}. Columns found: 'text;label'. The header looks "
     "separated by semicolons, not by ',': choose that delimiter."),
    (b"text\tlabel\nx\tpos\n", ImportOptions(),
     "The text column 'text' is not in {p}. Columns found: 'text\\tlabel'. The header looks "
     "separated by tabs, not by ',': choose that delimiter."),
    (b"text\nx\n", ImportOptions(gold_col="gold"),
     "The gold-label column 'gold' is not in {p}. Columns found: 'text'."),
    (b"text\nx\n", ImportOptions(id_col="id"),
     "The id column 'id' is not in {p}. Columns found: 'text'."),
    (b"text,label\na,pos\nb,neg,extra,more\n", ImportOptions(),
     "CSV file {p} is malformed: Expected 2 fields in line 3, saw 4. Check the quoting and "
     "the delimiter."),
    (b'text\n"never closed\n', ImportOptions(),
     "CSV file {p} is malformed: EOF inside string starting at row 1. Check the quoting and "
     "the delimiter."),
])
def test_bad_files_get_a_specific_message(store, project, tmp_path, content, options, message):
    path = write(tmp_path, content)
    with pytest.raises(CsvImportError) as err:
        import_csv(store, project.id, path, options=options)
    assert str(err.value) == message.format(p=path)
    assert store.count_samples(project.id) == 0


def test_missing_file_is_named(store, project, tmp_path):
    with pytest.raises(CsvImportError) as err:
        import_csv(store, project.id, tmp_path / "gone.csv")
    assert str(err.value) == f"CSV file not found: {tmp_path / 'gone.csv'}"


def test_semicolon_files_import_with_the_delimiter_option(store, project, tmp_path):
    path = write(tmp_path, "text;label\nx;pos\n")
    import_csv(store, project.id, path, options=ImportOptions(delimiter=";", gold_col="label"))
    assert store.samples(project.id)[0].gold == "pos"


def test_uploaded_bytes_are_read_like_files():
    frame, report = read_table(b"text\nhello\n", name="upload.csv")
    assert frame["text"].tolist() == ["hello"]
    assert report.encoding == "utf-8"


@pytest.mark.slow
def test_one_hundred_thousand_rows_import_quickly(store, project, tmp_path):
    import time
    rows = "\n".join(f'"row {i}, with a comma"' for i in range(100_000))
    path = write(tmp_path, "text\n" + rows + "\n")
    start = time.perf_counter()
    report = import_csv(store, project.id, path)
    assert report.imported == 100_000
    assert time.perf_counter() - start < 30
