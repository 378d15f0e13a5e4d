"""Agreement: how far reviewers agree on the overlap (texts two reviewers label blind to
each other), each reviewer against the others and against gold or audit labels, their
pace, and the conflicts an owner resolves. The maths is candist_core.agreement."""
import pandas as pd
import streamlit as st

from candist_core.agreement import INTERVAL, agreement_report
from candist_core.store.team import MAX_OVERLAP_SHARE
from views.common import current_user, require_project

store, project = require_project("agreement")
st.title("Agreement")
st.caption("A share of the texts (the overlap) goes to two reviewers, each blind to the "
           "other's label, so the app can measure how consistent the labels are. Other "
           "texts go to one reviewer only.")


def _who() -> str:
    """Who resolves: the signed-in email (as every decision records it), else the reviewer
    name in use."""
    return current_user() or st.session_state.get("reviewer", "owner")


def _share_changed() -> None:
    try:
        store.set_overlap_share(project.id, st.session_state["overlap_pct"] / 100)
        st.session_state["flash"] = "Overlap share saved."
    except ValueError as exc:
        st.session_state["flash"] = str(exc)


st.slider("Overlap share: the % of texts labelled by two reviewers", 0,
          int(MAX_OVERLAP_SHARE * 100), int(round(store.overlap_share(project.id) * 100)),
          step=5, format="%d%%", key="overlap_pct", on_change=_share_changed,
                help="Each text is in the overlap by a fixed random draw, so texts imported "
                     "later join at the same share. Raising it keeps every text already in "
                     "it; lowering it never drops a text two reviewers have labelled. 10% "
                     "is usually enough to measure agreement.")
flash = st.session_state.pop("flash", None)
if flash:
    st.toast(flash)

report = agreement_report(store, project.id)
if report is None:
    st.info("No text has two reviewers' labels yet. Agreement shows here once two "
            "people have labelled the same texts on the Review page: team members who "
            "signed in (when the app is served to a team; the Team section of the Home page "
            "says how), or, without sign-in, people who each typed their own name in the "
            "sidebar's Reviewer box. A single reviewer has nothing to agree with.")
    st.stop()


def _pct(e) -> str:
    return "-" if e is None else f"{e.value:.0%} ({e.low:.0%}-{e.high:.0%}, n={e.n})"


def _num(e) -> str:
    return f"{e.value:.2f} ({e.low:.2f} to {e.high:.2f})"


FEW_TEXTS = 30   # texts with two raters below which kappa is shown with a warning


def _interval(e) -> str:
    return f"{e.low:.2f} to {e.high:.2f}"


st.subheader("Kappa")
st.caption("Kappa is agreement beyond chance: 1 = perfect agreement, 0 = no more than "
           "chance would give, below 0 = worse than chance. Above 0.8 is usually read as "
           f"strong, 0.6-0.8 as substantial. In brackets: the {INTERVAL} interval, the range "
           "the true value is likely in.")
fleiss = report["fleiss_kappa"]
st.metric("Fleiss' kappa (all raters)", f"{fleiss.value:.2f}",
          help="Agreement beyond chance over every text with two or more raters, whoever "
               "they are.")
st.caption(f"{_num(fleiss)} over {report['items']} texts with two or more raters; "
           f"reviewers: {', '.join(report['raters'])}.")
if report["items"] < FEW_TEXTS:
    st.warning(f"Only {report['items']} text(s) have two or more raters: kappa over so few "
               f"says little (see how wide the interval is). Around {FEW_TEXTS} or more make "
               f"it worth reading.")
if report["cohen_kappa"]:
    st.caption("Cohen's kappa: the same measure for one pair of reviewers on the texts "
               "they both labelled (pairs with at least 2 texts in common).")
    st.dataframe(pd.DataFrame([{"reviewer A": p["a"], "reviewer B": p["b"],
                                "texts": p["n"], "kappa": f"{p['estimate'].value:.2f}",
                                "95% interval": _interval(p["estimate"])}
                               for p in report["cohen_kappa"]]), hide_index=True)

st.subheader("Per label")
st.caption("Specific agreement: of the times a reviewer chose this label, how often the "
           "other reviewer of the text chose it too. Low values point at labels whose "
           "definition people read differently.")
st.dataframe(pd.DataFrame([{"label": label, "ratings": v["ratings"],
                            "specific agreement": None if v["value"] is None
                            else round(v["value"], 3)}
                           for label, v in report["specific_agreement"].items()]),
             hide_index=True)

st.subheader("Per reviewer")
st.caption("vs consensus: how often the reviewer's label matches the majority of the other "
           "reviewers of the text (ties left out). vs gold / vs audit: how often it "
           "matches the imported gold label / someone else's blind audit label. Shares "
           "with 95% Wilson intervals. Pace: decisions per hour while reviewing (pauses "
           "over 10 minutes left out).")
people = sorted(set(report["vs_consensus"]) | set(report["per_hour"]) | set(report["raters"]))
st.dataframe(pd.DataFrame([{
    "reviewer": who or "(no name)",
    "vs consensus": _pct(report["vs_consensus"].get(who)),
    "vs gold": _pct(report["vs_gold"].get(who)),
    "vs audit": _pct(report["vs_audit"].get(who)),
    "decisions per hour": None if report["per_hour"].get(who) is None
    else round(report["per_hour"][who]),
} for who in people]), hide_index=True)

st.subheader(f"Conflicts ({len(report['conflicts'])})")
st.caption("Texts whose reviewers disagree. Pick the right label to resolve one: the "
           "resolution becomes the text's label in the export and training; it is not "
           "counted as a rater, so kappa stays the reviewers' own agreement.")
resolved = store.resolutions(project.id)
if resolved:
    st.caption(f"{len(resolved)} conflict(s) resolved so far (the Review page's audit trail "
               "keeps who resolved what).")
if not report["conflicts"]:
    st.success("No open conflicts.")
    st.stop()
labels = store.label_schema(project.id).names
shown = report["conflicts"][:50]
texts = {s.id: s.text for s in store.samples(project.id, ids=[c["sample_id"] for c in shown])}


def _resolve(sample_id: int, widget: str) -> None:
    choice = st.session_state.get(widget)
    if choice:
        store.resolve(project.id, sample_id, choice, who=_who())
        st.session_state["flash"] = (f"Resolved as {choice}: the export and training use "
                                     f"it; the reviewers' own labels stay for kappa.")
    else:
        st.session_state["flash"] = "Choose a label first."


for c in shown:
    with st.container(border=True):
        st.text(texts.get(c["sample_id"], ""))   # plain text, never HTML or Markdown
        st.caption(" · ".join(f"{who or '(no name)'}: {label}"
                              for who, label in c["labels"].items()))
        widget = f"resolve-{c['sample_id']}"
        pick, go = st.columns([4, 1], vertical_alignment="bottom")
        pick.selectbox("Resolve as", labels, index=None, key=widget,
                       placeholder="Choose the right label")
        go.button("Resolve", key=f"resolve-go-{c['sample_id']}", on_click=_resolve,
                  args=(c["sample_id"], widget))
if len(report["conflicts"]) > len(shown):
    st.caption(f"Showing the first {len(shown)}; resolve them to see the rest.")
