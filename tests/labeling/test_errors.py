"""Failures talking to Label Studio are clear Jangin errors naming what went wrong."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest
from factories import STILLS, model_box
from test_roundtrip import FRAME_SCHEMA, box, tasks_by_key

from jangin.core import DatasetError, LabelStudioError, NotFoundError


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there now


def test_bad_token_is_a_clear_error(ls_server) -> None:
    from jangin.labeling import LabelStudioClient

    with pytest.raises(LabelStudioError, match=r"refused the API token \(401\)") as err:
        LabelStudioClient(ls_server.url, "not-the-token-123").check()
    assert "JANGIN_LABEL_STUDIO_TOKEN" in (err.value.hint or "")


def test_server_down_is_a_clear_error(make_ds) -> None:
    from jangin.labeling import LabelStudioClient, pull

    url = _dead_url()
    with pytest.raises(LabelStudioError, match="cannot reach Label Studio at " + url) as err:
        pull(make_ds(), "p", client=LabelStudioClient(url, "whatever-token"))
    assert "label-studio.sh start" in (err.value.hint or "")


@pytest.mark.parametrize(
    ("url", "token", "message"), [("", "tok123", "no Label Studio URL"), ("http://x", "", "no API token")]
)
def test_missing_settings(url: str, token: str, message: str) -> None:
    from jangin.labeling import LabelStudioClient

    with pytest.raises(LabelStudioError, match=message):
        LabelStudioClient(url, token)


def test_missing_project(ls_client, make_ds) -> None:
    from jangin.labeling import pull

    with pytest.raises(LabelStudioError, match="has no project 'no-such-project'"):
        pull(make_ds(), "no-such-project", client=ls_client)


def test_annotation_with_a_label_the_config_does_not_know(
    ls_server, ls_client, make_ds, project_name
) -> None:
    from jangin.labeling import pull, push

    ds = make_ds(n_frames=1)
    push(ds, project_name, client=ls_client, root=ls_server.root, schema=FRAME_SCHEMA)
    task = tasks_by_key(ls_client, project_name)["frame:frm-000000"]
    # Label Studio itself accepts a result with any label name through the API.
    ls_client.annotate(task["id"], [box(10, 10, 10, 10, "slag_inclusion")])
    n = ds.counts()["labels"]
    with pytest.raises(LabelStudioError, match=r"uses label 'slag_inclusion' \(control 'box'\)") as err:
        pull(ds, project_name, client=ls_client)
    assert f"task {task['id']}" in str(err.value)
    assert ds.counts()["labels"] == n  # nothing half-written


def test_model_label_not_in_the_schema(ls_server, ls_client, make_ds, project_name) -> None:
    from jangin.labeling import push

    ds = make_ds(n_frames=1)
    ds.append("labels", [model_box("frm-000000", "burn_through", [0.1, 0.1, 0.2, 0.2], 0.9)])
    with pytest.raises(LabelStudioError, match="label 'burn_through' .* of model det:3 on frame frm-000000"):
        push(ds, project_name, client=ls_client, root=ls_server.root, schema=FRAME_SCHEMA, model="det")


@pytest.mark.parametrize("model", ["nomodel", "det:99"])
def test_model_without_predictions_says_to_run_it_first(ls_server, ls_client, make_ds, model: str) -> None:
    from jangin.labeling import push

    ds = make_ds(n_frames=1)
    ds.append("labels", [model_box("frm-000000", "crack", [0.1, 0.1, 0.2, 0.2], 0.9)])  # det:3
    with pytest.raises(NotFoundError, match=f"model '{model}' has no predictions") as err:
        push(ds, "never-created", client=ls_client, root=ls_server.root, schema=FRAME_SCHEMA, model=model)
    assert "run model" in (err.value.hint or "")
    assert ls_client.find_project("never-created") is None


def test_bad_where_names_the_sql_problem(ls_server, ls_client, make_ds) -> None:
    from jangin.labeling import push

    with pytest.raises(DatasetError, match="selecting tasks failed"):
        push(
            make_ds(),
            "x",
            client=ls_client,
            root=ls_server.root,
            schema=FRAME_SCHEMA,
            where="f.no_such_column = 1",
        )


def test_project_title_too_long(ls_server, ls_client, make_ds) -> None:
    from jangin.labeling import push

    with pytest.raises(ValueError, match="1..50 characters"):
        push(
            make_ds(),
            "x" * 51,
            client=ls_client,
            root=ls_server.root,
            schema=FRAME_SCHEMA,
            where=f"f.session_id = '{STILLS}'",
        )


def test_server_makes_no_outbound_calls(ls_server, ls_client, make_ds, project_name) -> None:
    """Pages and API calls that would trigger the version check, analytics or Sentry reach nothing
    but loopback (the server's proxy is a recorder; see conftest)."""
    from jangin.labeling import push

    push(make_ds(n_frames=1), project_name, client=ls_client, root=ls_server.root, schema=FRAME_SCHEMA)
    for path in ("/", "/user/login/", "/api/version", "/projects/"):
        req = urllib.request.Request(
            ls_server.url + path, headers={"Authorization": f"Token {ls_server.token}"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
    time.sleep(2)  # a background call would come within a moment
    assert ls_server.outbound == []
