"""A tiny animal-question project and the LLM teacher pointed at the fake OpenAI server."""
from candist_core.llm_teacher import LLMTeacher
from candist_core.schema import build_schema
from candist_core.teacher import TeacherConfig, annotate_project

KEY = "sk-test-RECOGNISABLE-0123456789abcdef"
SCHEMA = build_schema("Sort animal questions.", ["cat", "dog", "bird"])
TEXTS = ["is my cat ok", "a dog barks", "bird song", "cat or dog", "which bird", "the dog",
         "my cat", "no animal here"]
FAST = dict(shots=0, max_retries=2, timeout=1.0, concurrency=1)


def animals_project(store):
    project = store.create_project("animals", SCHEMA)
    store.insert_samples(project.id, [(str(i), t, None) for i, t in enumerate(TEXTS)])
    return project


def teacher_for(fake, **kw):
    return LLMTeacher.connect(base_url=fake.url, model="fake-model", api_key=KEY, **kw)


def run(store, project, fake, *, teacher=None, **config):
    config = TeacherConfig(**{"strategy": "ca_all", **FAST, **config})
    return annotate_project(store, project.id, teacher or teacher_for(fake), config)
