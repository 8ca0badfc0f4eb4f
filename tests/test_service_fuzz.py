"""Fuzzing: schemathesis over the OpenAPI spec (no 500s), hypothesis over the WebSocket
protocol (never an internal error, nothing left behind after any message sequence)."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path

import jsonschema_rs
import numpy as np
import pytest
import schemathesis
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance
from service_util import (
    make_settings,
    read_until_close,
    running_app,
    send_messages,
    stream_through,
    wait_idle,
)

from conftest import speech_like, tiny_model
from hush.models import save_weights
from hush.service import create_app

MAX_MESSAGE = 4096
# CI-sized by default; a deeper run: HUSH_FUZZ_REST_EXAMPLES=300 HUSH_FUZZ_WS_EXAMPLES=1000 pytest ...
REST_EXAMPLES = int(os.environ.get("HUSH_FUZZ_REST_EXAMPLES", "40"))
WS_EXAMPLES = int(os.environ.get("HUSH_FUZZ_WS_EXAMPLES", "80"))


@pytest.fixture(scope="module")
def module_weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    save_weights(tiny_model("gru"), folder, "tiny-gru")
    save_weights(tiny_model("dnn"), folder, "tiny-dnn")
    return folder


@st.composite
def audio_files(draw) -> bytes:
    """Real WAV/FLAC/Ogg files of random rate, channels, length and subtype, sometimes
    truncated or with flipped bytes; or plain random bytes.

    The first choice of each draw is the intact, non-empty file, because hypothesis favours
    first choices and small numbers: drawn as "integer 0 = random bytes" and "0..6000 frames",
    most files were random bytes or empty, and a fuzzing run could reach no successful
    enhancement at all."""
    if draw(st.sampled_from(["file", "file", "file", "random bytes"])) == "random bytes":
        return draw(st.binary(max_size=2000))
    fmt, subtype = draw(
        st.sampled_from(
            [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("WAV", "PCM_U8"), ("FLAC", "PCM_24"), ("OGG", "VORBIS")]
        )
    )
    rate = draw(st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]))
    channels = draw(st.integers(1, 3))
    frames = draw(st.sampled_from([3200, 800]) | st.integers(0 if fmt == "WAV" else 1, 6000))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * rng.standard_normal((frames, channels)), rate, format=fmt, subtype=subtype)
    data = bytearray(buffer.getvalue())
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "flip" and data:
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] ^= 0xFF
    return bytes(data)


# Every way the spec lets a client send audio gets real (sometimes damaged) audio files: the
# raw body under each audio type and application/octet-stream, and the multipart file part
# (a "binary" string); otherwise the fuzzer rarely sends anything the server can decode.
schemathesis.openapi.media_type(
    "audio/wav", audio_files(), aliases=["audio/flac", "audio/ogg", "application/octet-stream"]
)
schemathesis.openapi.format("binary", audio_files())

# Built at import: schemathesis turns the spec into one test per operation at collection.
# It starts the app's lifespan itself (models loaded, scheduler running) on first use.
_SCHEMA_WEIGHTS = tempfile.TemporaryDirectory(prefix="hush-fuzz-")
save_weights(tiny_model("gru"), Path(_SCHEMA_WEIGHTS.name), "tiny-gru")
save_weights(tiny_model("dnn"), Path(_SCHEMA_WEIGHTS.name), "tiny-dnn")
_KEY = "fuzz-key"
_APP = create_app(
    make_settings(Path(_SCHEMA_WEIGHTS.name), max_body_bytes=200_000, max_duration_s=5.0, api_keys=_KEY)
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


# /v1/enhance's query parameters as the app's own OpenAPI spec describes them, so that the
# predicate below cannot drift from what the server declares.
_QUERY_VALIDATORS = {
    param["name"]: jsonschema_rs.validator_for(param["schema"])
    for param in _APP.openapi()["paths"]["/v1/enhance"]["post"]["parameters"]
    if param["in"] == "query"
}


def query_in_schema(query: dict) -> bool:
    """Whether /v1/enhance's query is one the OpenAPI spec allows (a positive case).

    Values may arrive as the strings they are sent as: a string that parses as a finite
    number also counts as that number (JSON has no NaN or infinity)."""
    for name, value in query.items():
        validator = _QUERY_VALIDATORS.get(name)
        if validator is None:
            return False
        if validator.is_valid(value):
            continue
        try:
            number = float(value) if isinstance(value, str) else math.nan
        except ValueError:
            return False
        if not (math.isfinite(number) and validator.is_valid(number)):
            return False
    return True


def test_query_in_schema():
    """The predicate that keeps the fuzzer's negative queries negative."""
    assert query_in_schema({}) and query_in_schema({"model": "tiny-gru", "format": "ogg"})
    assert query_in_schema({"attenuation_limit_db": "12.5", "model": None})
    assert not query_in_schema({"model": "x" * 65})
    assert not query_in_schema({"format": "mp3"})
    for bad in ("-1", "200.5", "nan", "abc", True, [1]):
        assert not query_in_schema({"attenuation_limit_db": bad}), bad
    assert not query_in_schema({"unknown": "1"})


@schema.hook
def flatmap_query(context, query):
    """Half the generated queries keep schemathesis' values; the other half get a loaded
    model (or none), a valid format and limit (or none). Left alone, schemathesis almost
    always sends a random model name, which is rightly refused with 422, so a run of 40
    examples reached a successful enhancement only 2-4 times in 86 requests and sometimes
    never (CI, 2026-12-04), failing ``test_openapi_fuzz_reached_both_outcomes`` by chance.

    A query outside the spec is a negative case's mutation and is kept: replacing it with a
    valid one turned the case into a valid request that the server rightly accepted, which
    ``negative_data_rejection`` then reported as accepted negative data (flaky failure,
    2026-12-05: ``model=tiny-dnn&format=flac&attenuation_limit_db=12.5`` answered 200)."""
    if not query or not query_in_schema(query):
        return st.just(query)
    valid = st.fixed_dictionaries(
        {},
        optional={
            "model": st.sampled_from(["tiny-gru", "tiny-dnn"]),
            "format": st.sampled_from(["wav", "flac", "ogg"]),
            "attenuation_limit_db": st.sampled_from(["0", "6", "12.5", "200"]),
        },
    )
    return st.just(query) | valid


OUTCOMES: dict[str, dict[int, int]] = {}  # operation -> status -> count, for the coverage test


@schema.parametrize()
@settings(max_examples=REST_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_fuzz(case):
    """Every generated request gets a documented, non-5xx answer with a conforming body,
    and the secured operations refuse requests without the right key (``ignored_auth``).

    Excluded: ``positive_data_acceptance``, which expects any schema-valid body to succeed;
    our schema can only say "binary", and random bytes are rightly refused with 400/415.
    """
    headers = {"X-API-Key": _KEY}
    response = case.call(headers=headers)
    key = f"{case.method} {case.path}"
    OUTCOMES.setdefault(key, {}).setdefault(response.status_code, 0)
    OUTCOMES[key][response.status_code] += 1
    assert response.status_code < 500, (case.path, case.query, response.status_code, response.text[:300])
    case.validate_response(response, headers=headers, excluded_checks=[positive_data_acceptance])


def test_openapi_fuzz_reached_both_outcomes():
    """The REST fuzzing above reached real enhancement as well as every error family."""
    if "POST /v1/enhance" not in OUTCOMES:
        pytest.skip("run together with test_openapi_fuzz")
    statuses = OUTCOMES["POST /v1/enhance"]
    print("schemathesis outcomes:", OUTCOMES)
    assert statuses.get(200, 0) > 0, statuses
    assert {400, 415, 422} & set(statuses), statuses


# ---------------------------------------------------------------------------- WebSocket
rates = st.sampled_from([8000, 16000, 22050, 44100, 48000]) | st.integers(-10, 200_000)
encodings = st.sampled_from(["pcm_s16le", "pcm_f32le"]) | st.text(max_size=12)
start_dicts = st.fixed_dictionaries(
    {"type": st.just("start"), "sample_rate": rates, "encoding": encodings},
    optional={
        "channels": st.sampled_from([1, 1, 2, 0, -1]) | st.text(max_size=2),
        "model": st.sampled_from(["tiny-gru", "tiny-dnn", "nope", "../../etc/passwd", ""]),
        "attenuation_limit_db": st.none() | st.floats() | st.integers(-5, 300) | st.booleans(),
    },
)
good_start = st.fixed_dictionaries(
    {
        "type": st.just("start"),
        "sample_rate": st.sampled_from([8000, 16000, 44100]),
        "encoding": st.sampled_from(["pcm_s16le", "pcm_f32le"]),
        "channels": st.just(1),
    }
).map(json.dumps)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
text_messages = st.one_of(
    start_dicts.map(json.dumps),
    st.sampled_from(['{"type": "end"}', '{"type": "stats"}', '{"type": "start"}', "{", "", "null"]),
    (st.none() | st.floats() | st.integers(-3, 200) | st.text(max_size=3)).map(
        lambda v: json.dumps({"type": "configure", "attenuation_limit_db": v})
    ),
    json_values.map(json.dumps),
    st.text(max_size=40),
    st.just("x" * (MAX_MESSAGE + 1)),
)
binary_messages = st.one_of(
    st.binary(max_size=700),  # random bytes, odd and even lengths
    st.integers(0, 1200).map(bytes),  # silence of any length
    st.integers(1, 400).map(lambda n: (0.1 * np.sin(np.arange(n))).astype("<f4").tobytes()),
    st.integers(1, 400).map(lambda n: (3000 * np.sin(np.arange(n))).astype("<i2").tobytes()),
    st.just(b"\x00" * (MAX_MESSAGE + 2)),  # huge frame
)
sequences = st.one_of(
    st.lists(text_messages | binary_messages, max_size=10),
    st.tuples(good_start, st.lists(text_messages | binary_messages, max_size=10)).map(
        lambda t: [t[0], *t[1]]
    ),
    st.tuples(good_start, st.lists(binary_messages, max_size=10)).map(lambda t: [t[0], *t[1]]),
)


def test_websocket_fuzz(module_weights):
    """Random and malformed messages: random bytes, odd lengths, huge frames, text where
    audio belongs, start twice, audio before start. Each sequence is followed by ``end``
    and read to the close: the server answers with a documented close code, never 1011,
    and afterwards holds no connection, session, task or stream state."""
    with running_app(make_settings(module_weights, max_message_bytes=MAX_MESSAGE)) as (client, state):
        seen: dict[int, int] = {}

        @settings(max_examples=WS_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(messages=sequences)
        def run(messages):
            with client.websocket_connect("/v1/stream") as ws:
                send_messages(ws, messages)
                ws.send_text('{"type": "end"}')
                _, replies, code = read_until_close(ws)
            seen[code] = seen.get(code, 0) + 1
            assert code in (1000, 1003, 1007, 1009), (code, replies, messages)
            errors = [r for r in replies if r.get("type") == "error"]
            if code == 1000:
                done = replies[-1]
                assert done["type"] == "done" and done["samples_in"] == done["samples_out"]
                assert not errors
            else:
                assert len(errors) == 1 and errors[0]["code"] != "internal_error"
            wait_idle(state)

        run()
        print("websocket fuzz close codes:", dict(sorted(seen.items())))
        # Both outcomes were exercised, and the server still streams correctly.
        assert seen.get(1000) and sum(seen.values()) > seen[1000]
        out, _, code = stream_through(client, speech_like(0.2), [160, 7])
        assert code == 1000 and out.size == 3200


def test_websocket_drop_mid_stream_fuzz(module_weights):
    """Clients that vanish after any prefix of a valid stream leave nothing behind."""
    with running_app(make_settings(module_weights)) as (client, state):

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(chunks=st.lists(st.integers(0, 3000), max_size=8), stats=st.booleans())
        def run(chunks, stats):
            with client.websocket_connect("/v1/stream") as ws:
                ws.send_text(json.dumps({"type": "start", "sample_rate": 16000, "encoding": "pcm_s16le"}))
                ws.receive_json()
                for n in chunks:
                    ws.send_bytes(b"\x10\x00" * n)
                if stats:
                    ws.send_text('{"type": "stats"}')
            wait_idle(state)

        run()
