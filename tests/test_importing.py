"""CSV import: what is stored, what is reported, and that nothing is duplicated. Every
refused file and its exact message: tests/reliability/test_bad_inputs.py."""
import pytest

from candist_core.importing import ImportOptions, import_csv, read_table
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


def test_semicolon_files_import_with_the_delimiter_option(store, project, tmp_path):
    path = write(tmp_path, "text;label\nx;pos\n")
    import_csv(store, project.id, path, options=ImportOptions(delimiter=";", gold_col="label"))
    assert store.samples(project.id)[0].gold == "pos"


def test_uploaded_bytes_are_read_like_files():
    frame, report = read_table(b"text\nhello\n", name="upload.csv")
    assert frame["text"].tolist() == ["hello"]
    assert report.encoding == "utf-8"


def test_malformed_lines_can_be_left_out_each_named_by_its_line(store, project, tmp_path):
    path = write(tmp_path, "text,label\nfine,pos\nsplit, here,pos\nalso fine,neg\n"
                           "one,two,three,four\nlast,neg\n")
    with pytest.raises(Exception, match="line 3.*leave the malformed lines out \\('Skip malformed lines'"):
        import_csv(store, project.id, path, options=GOLD)
    assert store.count_samples(project.id) == 0               # refused whole by default
    report = import_csv(store, project.id, path,
                        options=ImportOptions(gold_col="label", skip_bad_lines=True))
    assert report.bad_lines == [3, 5] and report.imported == 3
    assert report.messages()[0].startswith("2 malformed line(s) were left out (file lines "
                                           "3, 5: the wrong number of fields)")
    assert [s.text for s in store.samples(project.id)] == ["fine", "also fine", "last"]
    assert report.to_dict()["bad_lines"] == 2


def test_a_repeated_text_is_kept_and_said(store, project, tmp_path):
    path = write(tmp_path, "text\nsame\nother\nsame\n")
    report = import_csv(store, project.id, path)
    assert report.imported == 3 and report.repeated_texts == [3]
    assert report.messages() == ["1 row(s) repeat a text seen earlier in the file; each copy "
                                 "is kept as a sample of its own (rows 3)."]


def test_gold_values_spelled_another_way_are_mapped_to_the_labels(store, project, tmp_path):
    path = write(tmp_path, "text,label\na,p\nb,n\nc,meh\n")
    report = import_csv(store, project.id, path, options=ImportOptions(
        gold_col="label", gold_map=(("p", "pos"), ("n", "neg"))))
    assert [s.gold for s in store.samples(project.id)] == ["pos", "neg", None]
    assert report.unknown_gold == {"meh": 1}
    with pytest.raises(Exception, match="not in the project: 'positive'"):
        import_csv(store, project.id, path, options=ImportOptions(
            gold_col="label", gold_map=(("p", "positive"),)))
