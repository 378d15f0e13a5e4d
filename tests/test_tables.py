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


def test_wrapped_rows_show_up_to_eight_texts_and_a_short_table_has_no_empty_band():
    from candist_core.tables import HEADER_PX, WRAP_ROW_PX, wrapped_height
    assert WRAP_ROW_PX > 64                    # Streamlit wraps cells only above 4rem
    assert wrapped_height(3) == HEADER_PX + 3 * WRAP_ROW_PX + 2
    assert wrapped_height(50) == wrapped_height(8) and wrapped_height(0) == wrapped_height(1)


def test_column_names_read_as_a_sentence():
    from candist_core.tables import listed
    assert listed(["gold"]) == "gold"
    assert listed(["gold", "annotators"]) == "gold and annotators"
    assert listed(["a", "b", "c"]) == "a, b and c"


def test_a_wrapped_column_narrows_to_its_longest_word_never_cutting_a_label():
    from candist_core.tables import PAD_PX
    columns = {"id": ["demo-001"], "text": ["t"], "student": ["technical_problem"],
               "candidates": ["delivery, technical_problem, account_access, returns_refunds"],
               "human": ["returns_refunds"], "confidence": [0.5]}
    widths = fitted_widths(columns, fixed={"confidence": 90}, min_flex=400,
                           whole=("id", "student", "human"), wraps=("candidates",))
    assert widths["candidates"] == len("technical_problem") * CHAR_PX + PAD_PX
    unwrapped = fitted_widths(columns, fixed={"confidence": 90}, min_flex=400,
                              whole=("id", "student", "human"))
    assert unwrapped["candidates"] < widths["candidates"]   # without wrapping: the header
