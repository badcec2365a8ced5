"""The Hugging Face Hub client, the user's token, and clear errors for what the Hub answers.

:func:`hub_client` is the one place that makes the client; tests replace it with a stand-in
(``monkeypatch.setattr(mmbench.hub.client, "hub_client", ...)``), so nothing else may construct
``HfApi``. The token is read where ``huggingface_hub`` keeps it and never printed, logged or
written; error messages are scrubbed of it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmbench.errors import HubError, InvalidConfigError, MMBenchError
from mmbench.hub.folder import CARD_FILE

__all__ = ["REPO_TYPE", "check_repo", "hub_client", "hub_errors", "hub_token", "remote_card"]

REPO_TYPE = "dataset"
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def hub_client(token: str | None = None) -> Any:
    """The Hub client: ``huggingface_hub.HfApi``. Tests replace this function with a stand-in."""
    from huggingface_hub import HfApi

    return HfApi(token=token)


def hub_token(*, required: bool) -> str | None:
    """The user's Hub token (``$HF_TOKEN`` or the one saved by ``hf auth login``); never printed."""
    from huggingface_hub import get_token

    token = get_token()
    if not token and required:
        raise HubError(
            "No Hugging Face token found. Publishing needs a token with write access: set the HF_TOKEN "
            "environment variable or run `hf auth login` (mmbench reads it from there and never prints "
            "or stores it). Create one at https://huggingface.co/settings/tokens."
        )
    return token or None


def check_repo(repo: Any) -> str:
    if not isinstance(repo, str) or not _REPO_RE.match(repo) or ".." in repo:
        raise InvalidConfigError(
            f"Invalid Hub repository {repo!r}: expected ORG/NAME (letters, digits, '-', '_', '.'), e.g. 'my-lab/polymnist'."
        )
    return repo


_NETWORK_ERRORS = {"TransportError", "RequestError", "ConnectionError", "Timeout", "TimeoutException", "NetworkError"}


def _is_network_error(exc: BaseException) -> bool:
    # huggingface_hub has used requests, httpx and httpx2: match their transport errors by name.
    return isinstance(exc, ConnectionError | TimeoutError) or any(c.__name__ in _NETWORK_ERRORS for c in type(exc).__mro__)


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "<token>") if token else text


def _translate(exc: Exception, action: str, repo: str, revision: str | None, token: str | None) -> HubError:
    """A :class:`HubError` that says what failed and what to do, for an error of the Hub client."""
    from huggingface_hub import errors as hf

    detail = _scrub(f"{type(exc).__name__}: {exc}".splitlines()[0], token)
    at = f" at revision {revision!r}" if revision else ""
    if isinstance(exc, hf.GatedRepoError):
        return HubError(f"{action}: {repo!r} is gated; accept its conditions on the Hub with the account of your token.")
    if isinstance(exc, hf.RepositoryNotFoundError):
        return HubError(
            f"{action}: the dataset repository {repo!r} was not found on the Hub (or it is private and the "
            "token cannot see it). Check ORG/NAME and the token's access; `mmbench publish --create` creates it."
        )
    if isinstance(exc, hf.RevisionNotFoundError):
        return HubError(f"{action}: {repo!r} has no revision {revision!r} (branch, tag or commit). Run "
                        f"`huggingface-cli` or see the repository's 'Files and versions' tab for its refs.")
    if isinstance(exc, hf.EntryNotFoundError):
        return HubError(f"{action}: a file is missing from {repo!r}{at} ({detail}).")
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return HubError(
                f"{action}: the Hub refused the token (HTTP {status}): it is invalid, expired, or has no write "
                f"access to {repo!r}. Set HF_TOKEN or run `hf auth login` with a write token."
            )
        return HubError(f"{action}: the Hub answered with an error ({detail}). Try again later.")
    if _is_network_error(exc):
        return HubError(
            f"{action}: could not reach the Hugging Face Hub ({detail}). Check the network connection "
            "(and HF_ENDPOINT / proxy settings), then run the command again."
        )
    raise exc


@contextlib.contextmanager
def hub_errors(action: str, repo: str, *, revision: str | None = None, token: str | None = None) -> Iterator[None]:
    try:
        yield
    except MMBenchError:
        raise
    except Exception as exc:
        raise _translate(exc, action, repo, revision, token) from exc


def remote_card(api: Any, repo: str, revision: str) -> str | None:
    """The README of ``repo`` at ``revision``, or ``None`` when it has none."""
    from huggingface_hub import errors as hf

    try:
        path = api.hf_hub_download(repo, CARD_FILE, repo_type=REPO_TYPE, revision=revision)
    except hf.EntryNotFoundError:
        return None
    return Path(path).read_text(encoding="utf-8")
