"""Prompt building and robust reply parsing (pure)."""
import pytest

from candist_core.prompts import build_messages, parse_reply, response_schema, system_prompt
from candist_core.records import Label
from candist_core.schema import build_schema

TREC_LIKE = build_schema("Question types.", [
    Label("Abbreviation", "Asks for an abbreviation (TREC code ABBR)."),
    Label("Entity", "A thing (TREC code ENTY)."),
    Label("Human", "A person (TREC code HUM)."),
])
BANK = build_schema("Intents.", ["card_payment", "card_payment_fee_charged", "top_up"])


def labels(content, schema=TREC_LIKE, multi=True, **kw):
    parsed = parse_reply(content, schema, multi=multi, **kw)
    return list(parsed.labels), parsed.error_kind


def test_system_prompt_lists_every_class_with_its_meaning_and_the_instruction():
    prompt = system_prompt(TREC_LIKE, "ca_add")
    assert prompt.splitlines()[:5] == ["Question types.", "", "The classes are:",
                                       "1. Abbreviation: Asks for an abbreviation (TREC code "
                                       "ABBR).", "2. Entity: A thing (TREC code ENTY)."]
    assert "If you are unsure, also include the other potential classes" in prompt
    assert "exactly one" in system_prompt(TREC_LIKE, "sa")
    assert "all the classes the text could possibly belong to" in system_prompt(TREC_LIKE,
                                                                                 "ca_all")


def test_demonstrations_are_single_label_turns_before_the_text():
    messages = build_messages(TREC_LIKE, "ca_all", "Who?", demos=[("What is NASA?",
                                                                    "Abbreviation")])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == '{"labels": ["Abbreviation"]}'
    assert messages[-1]["content"] == "Text: Who?"
    sa = build_messages(TREC_LIKE, "sa", "Who?", demos=[("x", "Human")])
    assert sa[2]["content"] == '{"label": "Human"}'


def test_the_response_schema_enumerates_the_labels():
    schema = response_schema(["a", "b"], multi=True)
    assert schema["properties"]["labels"]["items"]["enum"] == ["a", "b"]
    assert response_schema(["a", "b"], multi=False)["required"] == ["label"]


@pytest.mark.parametrize("content, expected", [
    ('{"labels": ["Entity", "Human"]}', ["Entity", "Human"]),
    ('```json\n{"labels": ["human"]}\n```', ["Human"]),
    ('{"label": "ENTITY."}', ["Entity"]),
    ('["Human", "Entity", "Human"]', ["Human", "Entity"]),
    ("The answer is Human.", ["Human"]),
    ("**Entity**, or perhaps human", ["Entity", "Human"]),
    ("ABBR", ["Abbreviation"]),
    ("3", ["Human"]),
    ('{"labels": ["2"]}', ["Entity"]),
])
def test_replies_are_read_in_their_order(content, expected):
    assert labels(content) == (expected, None)


def test_single_answers_keep_the_first_label():
    assert labels("Entity or Human", multi=False) == (["Entity"], None)


def test_longer_names_win_over_their_prefixes():
    assert labels("card_payment_fee_charged", BANK) == (["card_payment_fee_charged"], None)
    assert labels("card payment fee charged, or top-up", BANK) == (
        ["card_payment_fee_charged", "top_up"], None)


@pytest.mark.parametrize("content, kind", [
    (None, "unparseable"), ("  ", "unparseable"), ("None of these.", "no_valid_label"),
    ('{"labels": ["Location"]}', "no_valid_label"), ("I cannot tell", "no_valid_label"),
])
def test_replies_without_a_valid_label_say_why(content, kind):
    assert labels(content) == ([], kind)


def test_select_answers_must_come_from_the_candidates():
    assert labels("Human", allowed=["Entity", "Abbreviation"]) == ([], "no_valid_label")
    assert labels("Human or Entity", allowed=["Entity", "Human"], multi=False) == (["Human"],
                                                                                   None)
