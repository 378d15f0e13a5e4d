"""Candidate-set measures (method page §3) on hand-computed examples."""
import pytest

from candist_core.metrics import accuracy, candidate_metrics, per_class_coverage


def test_coverage_beta_f1_and_sizes():
    sets = [["a"], ["a", "b"], ["b", "c"], ["c"]]
    golds = ["a", "a", "a", None]
    m = candidate_metrics(sets, golds, num_classes=3, single=["a", "b", "b", "c"])
    assert m["coverage"] == pytest.approx(2 / 3)
    # beta over all four sets: (2/2 + 1/2 + 1/2 + 2/2) / 4
    assert m["beta"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * 0.75 / (2 / 3 + 0.75))
    assert m["mean_labels"] == 1.5
    assert m["set_sizes"] == {"1": 2, "2": 2}
    assert m["sa_accuracy"] == pytest.approx(1 / 3)


def test_single_labels_make_coverage_equal_accuracy():
    m = candidate_metrics([["a"], ["b"]], ["a", "a"], num_classes=2, single=["a", "b"])
    assert m["coverage"] == m["sa_accuracy"] == 0.5 and m["mean_labels"] == 1


def test_without_gold_only_the_sizes_are_known():
    m = candidate_metrics([["a", "b"]], [None], num_classes=2)
    assert m["coverage"] is None and m["f1"] is None and m["mean_labels"] == 2


def test_per_class_rows():
    rows = per_class_coverage([["a"], ["a", "b"], ["a"]], ["a", "b", "b"], ["a", "b"],
                              single=["a", "a", "a"])
    assert rows[0]["label"] == "a" and rows[0]["coverage"] == 1.0
    assert rows[1]["coverage"] == 0.5 and rows[1]["sa_accuracy"] == 0.0
    assert accuracy(["a", "b"], ["a", None]) == 1.0 and accuracy(["a"], [None]) is None


def test_confusion_and_cooccurrence_matrices():
    from candist_core.charts import confusion_matrix, cooccurrence_matrix
    m = confusion_matrix([("a", "a", 3), ("b", "a", 1), ("b", "b", 2)], ["a", "b"])
    assert m.tolist() == [[3, 1], [0, 2]]
    c = cooccurrence_matrix([["a", "b"], ["a", "b", "c"], ["c"]], ["a", "b", "c"])
    assert c.tolist() == [[0, 2, 1], [2, 0, 1], [1, 1, 0]]


def drawn_curves(epochs: list[dict]) -> set[str]:
    from candist_core.charts import loss_figure, score_figure
    figures = [loss_figure(epochs, None), score_figure(epochs, None)]
    return {t.name for f in figures if f is not None for t in f.data}


def test_the_training_caption_explains_only_the_curves_the_charts_draw():
    from candist_core.charts import training_caption
    sa_epochs = [{"epoch": e, "loss": 1.0 / e, "selection_score": 0.8, "human_accuracy": None,
                  "selection_n": 20, "d_out": 0, "d_sl": 0, "d_hc": 0, "step_losses": [1.0]}
                 for e in (1, 2)]
    names = drawn_curves(sa_epochs)
    caption = training_caption(sa_epochs)
    assert "sharpened" not in names
    assert {"each step", "epoch mean", "selection score"} <= names
    assert "sharpened (" not in caption and "trusted outside the set (" not in caption
    assert "human decisions:" not in caption
    assert "selection score" in caption and "no refinery group curves" in caption

    candist = [dict(sa_epochs[0]), dict(sa_epochs[1], d_out=40, d_sl=12, d_hc=300,
                                        human_accuracy=0.7)]
    names = drawn_curves(candist)
    caption = training_caption(candist)
    for name, symbol in (("outside the set", "D_out"), ("sharpened", "D_sl"),
                         ("trusted outside the set", "D_hc")):
        # plain words in the legend; the caption adds the paper's symbol
        assert name in names and f"{name} ({symbol} in the paper):".lower() in caption.lower()
    assert "accuracy on human decisions" in names and "human decisions:" in caption
    assert "no refinery group curves" not in caption


def test_loss_and_scores_get_an_axis_each_and_set_sizes_the_right_one():
    from candist_core.charts import loss_figure, score_figure
    epochs = [{"epoch": e, "loss": 0.5, "selection_score": 0.8, "selection_n": 20,
               "d_out": 3, "step_losses": [0.5]} for e in (1, 2)]
    assert loss_figure(epochs, None).layout.yaxis.title.text == "loss"
    scores = score_figure(epochs, None)
    assert scores.layout.yaxis.title.text == "share of held-back texts"
    assert scores.layout.yaxis2.title.text == "texts in the set"
    assert [t.yaxis or "y" for t in scores.data] == ["y", "y2"]


def test_set_sizes_are_whole_numbers_on_their_axis():
    from candist_core.charts import set_size_figure
    fig = set_size_figure([["a"], ["a", "b"], ["a", "b", "c"], ["b"]])
    assert fig.layout.xaxis.type == "category"
    assert list(fig.data[0].x) == ["1", "2", "3"] and list(fig.data[0].y) == [2, 1, 1]


def test_the_calibration_error_is_the_gap_between_shown_confidence_and_accuracy():
    import numpy as np
    from candist_core.metrics import calibration_error
    sure = np.array([[0.9, 0.1]] * 10)
    right_9_of_10 = np.array([0] * 9 + [1])
    assert calibration_error(sure, right_9_of_10) == pytest.approx(0.0)
    assert calibration_error(sure, np.array([0] * 5 + [1] * 5)) == pytest.approx(0.4)


def test_the_training_charts_mark_the_epoch_whose_weights_were_kept():
    from candist_core.charts import loss_figure, score_figure
    epochs = [{"epoch": e, "loss": 0.5, "selection_score": 0.8, "selection_n": 20,
               "step_losses": [0.5]} for e in (1, 2, 3)]
    for figure in (loss_figure, score_figure):
        marks = figure(epochs, 2).layout.shapes
        assert len(marks) == 1 and marks[0].x0 == marks[0].x1 == 2
        assert not figure(epochs, None).layout.shapes


def test_small_matrices_write_their_counts_in_the_cells():
    from candist_core.charts import confusion_figure, cooccurrence_figure
    small = confusion_figure([("a", "b", 2)], ["a", "b"], title="t")
    assert small.data[0].texttemplate == "%{z}"
    many = [f"l{i}" for i in range(77)]
    assert cooccurrence_figure([["l1", "l2"]], many).data[0].texttemplate is None


def test_count_matrices_tick_their_colour_scale_in_whole_texts():
    from candist_core.charts import confusion_figure, cooccurrence_figure
    one = confusion_figure([("a", "b", 1)], ["a", "b"], title="t").data[0].colorbar
    assert (one.tick0, one.dtick, one.tickformat) == (0, 1, "d")     # not 0, 0.5, 1
    assert one.title.text == "texts"
    busy = cooccurrence_figure([["a", "b"]] * 23, ["a", "b"]).data[0].colorbar
    assert busy.dtick == 5 and busy.tickformat == "d"
