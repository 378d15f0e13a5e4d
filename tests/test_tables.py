"""Every column of a page's table in sight at 1280x800, the text taking what is left."""
from candist_core.tables import CHAR_PX, MIN_FLEX, PAGE_WIDTH, fitted_widths


def test_ids_get_the_width_they_need_and_the_text_the_rest():
    widths = fitted_widths({"id": ["demo-001", "demo-150"], "text": ["a long text " * 20],
                            "label": ["technical_problem", "billing"]})
    assert widths["id"] >= len("demo-001") * CHAR_PX
    assert widths["label"] >= len("technical_problem") * CHAR_PX
    assert sum(widths.values()) == PAGE_WIDTH and widths["text"] > MIN_FLEX


def test_a_wide_table_narrows_its_widest_columns_but_never_below_a_header():
    columns = {"id": ["demo-00123"], "text": ["t"], "label_source": ["student"],
               "candidates": [["technical_problem", "account_access", "returns_refunds"]],
               "gold": ["technical_problem"], "annotators": [1], "confidence": [0.5]}
    widths = fitted_widths(columns, fixed={"confidence": 80})
    assert sum(widths.values()) <= PAGE_WIDTH
    assert MIN_FLEX <= widths["text"] < MIN_FLEX + 8 and widths["confidence"] == 80
    assert widths["label_source"] >= len("label_source") * CHAR_PX
    assert widths["annotators"] >= len("annotators") * CHAR_PX
    assert widths["id"] >= len("demo-00123") * CHAR_PX            # ids are never cut


def test_columns_with_nothing_to_show_leave_their_room_to_the_text():
    from candist_core.tables import shown_columns
    table = {"id": ["a"], "text": ["t"], "label": ["", ""], "candidates": [None, ""],
             "gold": ["x", ""]}
    assert shown_columns(table, keep=("id", "text")) == ["id", "text", "gold"]
