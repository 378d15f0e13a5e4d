"""The Predict page, headless with AppTest, over a real SQLite file and a real 1-epoch
student: download the model folder, label an uploaded file."""
import pandas as pd
import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from candist_core.distill import distill_project
from candist_core.encoder import shared_encoder
from candist_core.importing import ImportOptions, import_csv
from candist_core.schema import load_schema
from candist_core.store import Store
from candist_core.student import StudentConfig
from candist_core.teacher import OfflineTeacher, TeacherConfig, annotate_project


def open_predict(db, monkeypatch) -> AppTest:
    monkeypatch.setenv("CANDIST_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("views/predict.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_without_a_student_the_page_says_where_to_train_one(tmp_path, trec_dir, monkeypatch):
    with Store(tmp_path / "app.db") as store:
        store.create_project("trec", load_schema(trec_dir / "labels.json"))
    at = open_predict(tmp_path / "app.db", monkeypatch)
    assert any("No trained student" in i.value for i in at.info)


@pytest.mark.slow
def test_the_page_labels_an_uploaded_file_with_the_chosen_student(tmp_path, trec_dir,
                                                                 monkeypatch):
    db = tmp_path / "app.db"
    pd.read_csv(trec_dir / "train.csv").sample(n=120, random_state=2).to_csv(
        tmp_path / "slice.csv", index=False)
    with Store(db) as store:
        project = store.create_project("trec", load_schema(trec_dir / "labels.json"))
        import_csv(store, project.id, tmp_path / "slice.csv",
                   options=ImportOptions(gold_col="label"))
        annotate_project(store, project.id, OfflineTeacher(shared_encoder()), TeacherConfig())
        run_id = distill_project(store, project.id, StudentConfig(epochs=1, extra_epochs=0))
    at = open_predict(db, monkeypatch)
    student = next(s for s in at.selectbox if s.label == "Student")
    assert student.format_func(student.value).startswith(f"Run #{run_id}, candist")
    assert "trust_remote_code=True" in at.code[0].value
    upload = pd.read_csv(trec_dir / "test.csv").head(20).rename(columns={"text": "question"})
    at.file_uploader[0].upload("new.csv", upload.to_csv(index=False).encode(), "text/csv")
    at.run()
    column = next(s for s in at.selectbox if s.label == "Text column")
    column.set_value("question").run()
    next(b for b in at.button if b.label == "Label 20 texts").click().run()
    assert not at.error, [e.value for e in at.error]
    assert any(s.value.startswith("Labelled 20 texts") for s in at.success)
    assert any("'label' column is kept as 'input_label'" in c.value for c in at.caption)
    counts, preview = at.dataframe[-2].value, at.dataframe[-1].value
    assert counts["texts"].sum() == 20
    assert len(preview) == 20 and {"question", "input_label", "label", "confidence"} <= set(
        preview.columns)
