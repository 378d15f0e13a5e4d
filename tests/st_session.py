"""Drive a real Streamlit session over its websocket, as a browser does, with no browser.

    s = StreamlitSession("http://127.0.0.1:8501")
    s.open("review")                    # the page's url path ("" for the default page)
    s.set_text("Reviewer", "ana")       # type into a text input and press Enter
    s.texts()                           # the st.text bodies shown, in page order
    s.click("label-0")                  # a button, by its user key or its label
    s.close()

The protocol (Streamlit 1.67, ``streamlit/web/server/starlette/starlette_websocket.py``):

* ``GET /_stcore/health`` sets the ``_streamlit_xsrf`` cookie (``2|mask|token|time``).
* The websocket is ``ws://HOST:PORT/_stcore/stream`` with the ``Origin`` of the page
  (same origin, or the server closes with 1008), the cookie, and
  ``Sec-WebSocket-Protocol: streamlit, <xsrf cookie value>``: the first entry is the
  subprotocol the server accepts, the second the XSRF token it checks against the cookie
  (only needed to read a sign-in cookie), an optional third the session to resume.
* The client sends binary ``BackMsg`` protobufs. A page load or a widget interaction is
  ``BackMsg(rerun_script=ClientState(query_string, widget_states, page_script_hash,
  page_name, cached_message_hashes))``: ``page_name`` (the url path) on a load,
  ``page_script_hash`` (from ``new_session``) afterwards; ``widget_states`` carries every
  widget's value as the browser holds it (each widget commits its default when it mounts)
  and, for a clicked button, ``trigger_value=True`` for that one run only. Widget states
  are merged into the server's (a widget left out keeps its value), and a callback
  (``on_click`` / ``on_change``) runs when its widget's value differs from the server's.
* The server answers with binary ``ForwardMsg``s: ``new_session`` when a run starts,
  ``delta`` (``new_element`` / ``add_block`` at ``metadata.delta_path``: container 0 is the
  main area, 1 the sidebar, 2 events; ``new_transient`` for spinners and the like),
  ``navigation`` (the pages and their ``page_script_hash``), ``page_info_changed`` (the
  query string the browser puts in its address bar), ``script_finished`` (status 0
  finished, 1 compile error, 2 stopped early for a rerun, 3 a fragment run) and
  ``session_status_changed``. A run replaces what it redraws; at a full run's successful
  end the elements it did not redraw are dropped (the frontend's stale-node cleanup).
* A ``new_element`` message bigger than ``global.minCachedMessageSize`` is marked
  ``metadata.cacheable``; when the client lists its hash in ``cached_message_hashes`` the
  server may send only ``ref_hash`` instead. This client keeps such messages, as the
  browser does.
* Widget ids are ``$$ID-<hash>-<user key>`` (``None`` for a widget without a key).

One session is one browser tab: use it from one thread. ``reload()`` is a new tab on the
same address (a new server session; session state starts over).
"""
from __future__ import annotations

import contextlib
import http.cookies
import time
import urllib.parse
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.Markdown_pb2 import Markdown
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import connect

WIDGETS = {"button", "download_button", "text_input", "text_area", "selectbox", "radio",
           "number_input", "checkbox", "multiselect", "slider", "file_uploader",
           "chat_input", "date_input", "time_input", "color_picker", "button_group"}
FINISHED, COMPILE_ERROR, EARLY_FOR_RERUN, FRAGMENT_FINISHED = 0, 1, 2, 3
CACHE_SIZE = 500


class StreamlitScriptError(AssertionError):
    """The page showed an exception (or failed to compile)."""


@dataclass
class Widget:
    """A widget on the page: its id, user key (None without one), kind and label."""

    id: str
    key: str | None
    kind: str
    label: str
    proto: Any


def user_key(widget_id: str) -> str | None:
    """The user key embedded in a widget id (``$$ID-<hash>-<key>``), None without one."""
    if not widget_id.startswith("$$ID-"):
        return None
    parts = widget_id.split("-", 2)
    key = parts[2] if len(parts) == 3 else "None"
    return None if key == "None" else key


def default_state(kind: str, proto) -> WidgetState | None:
    """The widget state a browser commits for a freshly drawn widget (its default, or the
    value the script set), or None when it holds no value (a button, an empty select)."""
    state = WidgetState(id=proto.id)
    set_value = getattr(proto, "set_value", False)

    def held(field: str):
        return getattr(proto, field) if proto.HasField(field) else None

    if kind in ("text_input", "text_area"):
        value = held("value") if set_value else held("default")
        if value is None:
            return None
        state.string_value = value
    elif kind in ("selectbox", "radio"):
        if set_value:
            value = held("raw_value")
        else:
            index = held("default")
            value = proto.options[index] if index is not None \
                and 0 <= index < len(proto.options) else None
        if value is None:
            return None
        state.string_value = value
    elif kind == "number_input":
        value = held("value") if set_value else held("default")
        if value is None:
            return None
        state.double_value = value
    elif kind == "checkbox":
        state.bool_value = proto.value if set_value else proto.default
    else:
        return None
    return state


class StreamlitSession:
    """One browser tab on a running ``streamlit run``, over the websocket."""

    def __init__(self, url: str, *, timeout: float = 60.0, check: bool = True):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.check = check              # raise StreamlitScriptError when a run shows one
        self._ws = None
        self._stack: contextlib.ExitStack | None = None
        self._reset()

    def _reset(self) -> None:
        self._elements: dict[tuple, tuple[int, str, Any]] = {}   # path -> (run, kind, proto)
        self._states: dict[str, WidgetState] = {}                 # widget id -> value
        self._cache: OrderedDict[str, ForwardMsg] = OrderedDict()
        self._run = 0
        self._toasts: list[str] = []
        self.page_script_hash = ""
        self.query_string = ""
        self.pages: dict[str, str] = {}     # url path ("" default) -> page_script_hash
        self.runs = 0                       # finished runs seen
        self.messages = 0                   # ForwardMsgs received

    # ------------------------------------------------------------ connection
    def connect(self) -> None:
        """Open the websocket as the page's JavaScript does (cookie, Origin, XSRF)."""
        with urllib.request.urlopen(self.url + "/_stcore/health", timeout=self.timeout) as r:
            cookies = http.cookies.SimpleCookie()
            for value in r.headers.get_all("Set-Cookie") or []:
                cookies.load(value)
        xsrf = cookies["_streamlit_xsrf"].value if "_streamlit_xsrf" in cookies else ""
        protocols = ["streamlit"] + ([xsrf] if xsrf else [])
        headers = {"Cookie": f"_streamlit_xsrf={xsrf}"} if xsrf else {}
        ws_url = "ws" + self.url[len("http"):] + "/_stcore/stream"
        self._stack = contextlib.ExitStack()
        self._ws = self._stack.enter_context(connect(
            ws_url, subprotocols=protocols, origin=self.url, additional_headers=headers,
            max_size=None, open_timeout=self.timeout, compression=None))
        if self._ws.subprotocol != "streamlit":
            raise ConnectionError(f"server chose subprotocol {self._ws.subprotocol!r}")

    def close(self) -> None:
        if self._stack is not None:
            with contextlib.suppress(Exception):
                self._stack.close()
        self._stack = self._ws = None

    def __enter__(self) -> StreamlitSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    # ------------------------------------------------------------ what a user does
    def open(self, page: str = "", query: str | dict | None = None) -> float:
        """Load a page by its url path, as typing its address does: a new session on the
        first call, then the navigation menu's page switch. Returns the seconds to the
        end of the run."""
        if isinstance(query, dict):
            query = urllib.parse.urlencode(query)
        page = page.strip("/")
        if not self.connected:
            self.connect()
            return self._rerun(page_name=page, query=query or "")
        if page not in self.pages:
            raise KeyError(f"no page {page!r}; pages: {sorted(self.pages)}")
        return self._rerun(page_hash=self.pages[page], query=query or "")

    def reload(self, page: str | None = None, query: str | None = None) -> float:
        """Close the tab and open the address again (a new server session)."""
        path = self.current_page() if page is None else page
        query = self.query_string if query is None else query
        self.close()
        self._reset()
        return self.open(path, query)

    def set_text(self, label: str, value: str) -> float:
        """Type ``value`` into the text input (or text area) labelled ``label`` and commit
        it (Enter). Returns the seconds to the end of the run."""
        widget = self.widget(label, kinds=("text_input", "text_area"))
        return self._rerun(change=WidgetState(id=widget.id, string_value=value))

    def select(self, label: str, option: str) -> float:
        """Pick ``option`` in the selectbox or radio labelled ``label``."""
        widget = self.widget(label, kinds=("selectbox", "radio"))
        if option not in widget.proto.options:
            raise ValueError(f"{option!r} is not an option of {label!r}")
        return self._rerun(change=WidgetState(id=widget.id, string_value=option))

    def click(self, key_or_label: str, *, extra: list[WidgetState] = ()) -> float:
        """Click the button with this user key, or else this label (exact, or the one
        label that starts with it). Returns the seconds from the click to the end of
        the run it starts (the script's ``script_finished``). ``extra``: widget states
        sent along (say, a state the browser still held for a widget the last run
        removed, as it does when a key is pressed before a run has finished)."""
        widget = self.widget(key_or_label, kinds=("button",))
        return self._rerun(change=WidgetState(id=widget.id, trigger_value=True),
                           trigger=True, extra=extra)

    def rerun(self, *, extra: list[WidgetState] = ()) -> float:
        """Rerun the page with the widget states as they are (R in the browser)."""
        return self._rerun(extra=extra)

    def state(self, key_or_label: str) -> WidgetState | None:
        """A copy of the widget state this tab holds for a widget on the page."""
        held = self._states.get(self.widget(key_or_label).id)
        if held is None:
            return None
        copy = WidgetState()
        copy.CopyFrom(held)
        return copy

    # ------------------------------------------------------------ what the page shows
    def _shown(self, kinds: tuple[str, ...] | None = None) -> list[tuple[tuple, str, Any]]:
        return [(path, kind, proto) for path, (_, kind, proto) in sorted(self._elements.items())
                if kinds is None or kind in kinds]

    def elements(self) -> list[tuple[str, Any]]:
        """(kind, proto) of every element shown, in page order (main area, then sidebar)."""
        return [(kind, proto) for _, kind, proto in self._shown()]

    def texts(self, *, main_only: bool = True) -> list[str]:
        """The bodies of the ``st.text`` elements shown, in page order."""
        return [p.body for path, _, p in self._shown(("text",))
                if not main_only or path[0] == 0]

    def captions(self) -> list[str]:
        """The ``st.caption`` bodies shown, in page order."""
        return [p.body for _, _, p in self._shown(("markdown",))
                if Markdown.Type.Name(p.element_type) == "CAPTION"]

    def markdown(self) -> list[str]:
        """Every markdown body (captions, st.write, st.markdown), in page order."""
        return [p.body for _, _, p in self._shown(("markdown",))]

    def alerts(self) -> list[str]:
        """st.success / info / warning / error bodies."""
        return [p.body for _, _, p in self._shown(("alert",))]

    def toasts(self) -> list[str]:
        """The toasts the last run raised."""
        return list(self._toasts)

    def exceptions(self) -> list[str]:
        return [f"{p.type}: {p.message}" for _, _, p in self._shown(("exception",))]

    def widgets(self, kinds: tuple[str, ...] | None = None) -> list[Widget]:
        return [Widget(p.id, user_key(p.id), kind, p.label, p)
                for _, kind, p in self._shown(kinds or tuple(WIDGETS))]

    def buttons(self) -> list[Widget]:
        return self.widgets(("button",))

    def widget(self, key_or_label: str, *, kinds: tuple[str, ...] | None = None) -> Widget:
        """The widget with this user key, or else this label (exact, else the only one
        whose label starts with it); KeyError otherwise."""
        found = self.widgets(kinds)
        for match in (lambda w: w.key == key_or_label, lambda w: w.label == key_or_label,
                      lambda w: w.label.startswith(key_or_label)):
            hits = [w for w in found if match(w)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise KeyError(f"{len(hits)} widgets match {key_or_label!r}")
        raise KeyError(f"no {'/'.join(kinds or ('widget',))} {key_or_label!r} on the page; "
                       f"there are {[(w.key, w.label) for w in found]}")

    def value(self, key_or_label: str):
        """The value the tab holds for a widget (None when it holds none)."""
        state = self._states.get(self.widget(key_or_label).id)
        return None if state is None else getattr(state, state.WhichOneof("value"))

    def current_page(self) -> str:
        return next((path for path, h in self.pages.items() if h == self.page_script_hash),
                    "")

    # ------------------------------------------------------------ the protocol
    def _rerun(self, *, change: WidgetState | None = None, trigger: bool = False,
               page_name: str = "", page_hash: str | None = None,
               query: str | None = None, extra: list[WidgetState] = ()) -> float:
        if not self.connected:
            raise ConnectionError("not connected: open() a page first")
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query_string if query is None else query
        state.page_name = page_name
        state.page_script_hash = self.page_script_hash if page_hash is None else page_hash
        widgets = dict(self._states)
        widgets.update((w.id, w) for w in extra)
        if change is not None:
            widgets[change.id] = change
            if not trigger:               # a value stays; a trigger is sent once
                self._states[change.id] = change
        state.widget_states.widgets.extend(widgets.values())
        state.cached_message_hashes.extend(self._cache.keys())
        start = time.perf_counter()
        self._ws.send(msg.SerializeToString())
        self._wait_finished()
        return time.perf_counter() - start

    def _wait_finished(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no script_finished within {self.timeout} s")
            data = self._ws.recv(timeout=left)
            msg = ForwardMsg()
            msg.ParseFromString(data)
            self.messages += 1
            status = self._handle(msg)
            if status in (FINISHED, COMPILE_ERROR):
                self.runs += 1
                if self.check and (status == COMPILE_ERROR or self.exceptions()):
                    raise StreamlitScriptError("; ".join(self.exceptions())
                                               or "the script failed to compile")
                return

    def _handle(self, msg: ForwardMsg) -> int | None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                raise RuntimeError(f"server referred to a message not cached: {msg.ref_hash}")
            full = ForwardMsg()
            full.CopyFrom(cached)
            full.metadata.CopyFrom(msg.metadata)
            msg, kind = full, full.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash:
            self._cache[msg.hash] = msg
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        if kind == "new_session":
            self._run += 1
            self._toasts = []
            if msg.new_session.page_script_hash:
                self.page_script_hash = msg.new_session.page_script_hash
        elif kind == "navigation":
            self.pages = {("" if p.is_default else p.url_pathname): p.page_script_hash
                          for p in msg.navigation.app_pages}
            if msg.navigation.page_script_hash:
                self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta":
            self._delta(msg)
        elif kind == "script_finished":
            status = msg.script_finished
            if status == FINISHED:
                self._drop_stale()
            return status
        return None

    def _delta(self, msg: ForwardMsg) -> None:
        path = tuple(msg.metadata.delta_path)
        delta = msg.delta
        which = delta.WhichOneof("type")
        if which == "new_element":
            element = delta.new_element
            kind = element.WhichOneof("type")
            proto = getattr(element, kind)
            if kind == "toast":
                self._toasts.append(proto.body)
                return
            self._elements[path] = (self._run, kind, proto)
            if kind in WIDGETS:
                known = self._states.get(proto.id)
                if known is None or getattr(proto, "set_value", False):
                    state = default_state(kind, proto)
                    if state is not None:
                        self._states[proto.id] = state
        elif which == "add_block":
            self._elements[path] = (self._run, "block", delta.add_block)
        elif which == "new_transient":
            for element in delta.new_transient.elements:
                if element.WhichOneof("type") == "toast":
                    self._toasts.append(element.toast.body)

    def _drop_stale(self) -> None:
        self._elements = {p: e for p, e in self._elements.items() if e[0] == self._run}
        live = {e[2].id for e in self._elements.values() if e[1] in WIDGETS}
        self._states = {i: s for i, s in self._states.items() if i in live}
