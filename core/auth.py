"""People and their API tokens: argon2 password hashes, random bearer tokens stored as hashes.

A token reads `wp_<random>`; only its SHA-256 is stored, so the database never holds a usable
credential. Roles: analyst (usage and analytics), officer (bid support), admin (everything,
including people and devices)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal, cast

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core import queries as q
from core.errors import AuthConflict, AuthInvalid, AuthNotFound

Role = Literal["analyst", "officer", "admin"]
Scope = Literal["read", "write"]
ROLES: tuple[Role, ...] = ("analyst", "officer", "admin")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
TOKEN_PREFIX = "wp_"  # noqa: S105  (a prefix, not a secret)
# OWASP's argon2id profile (19 MiB, 2 passes, one lane: ~30 ms of one core here), not the
# library's default (64 MiB, 3 passes, four lanes: ~170 ms of both cores), so that the API can
# check passwords on one core while the other serves signed-in people (docs/security.md).
# Hashes made with other parameters still verify.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MIN_PASSWORD = 12
MAX_PASSWORD = 200
MIN_PASSWORD_SCORE = 3  # zxcvbn 0-4: "safely unguessable" (moderate protection) and above


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    role: Role
    scope: Scope
    token_id: int | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(conn: psycopg.Connection[Any], username: str, role: Role, password: str) -> int:
    if not USERNAME_RE.fullmatch(username):
        raise AuthInvalid("usernames are 2-64 of a-z 0-9 . _ -, starting with a letter or digit")
    if role not in ROLES:
        raise AuthInvalid(f"role must be one of {', '.join(ROLES)}")
    problem = password_problem(password, username)
    if problem is not None:
        raise AuthInvalid(problem)
    try:
        row = conn.execute(
            q.USER_ADD,
            (username, role, _hasher.hash(password)),
        ).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise AuthConflict(f"user {username!r} exists already") from exc
    assert row is not None  # noqa: S101  (INSERT ... RETURNING)
    return int(row[0])


def revoke_user(conn: psycopg.Connection[Any], username: str) -> None:
    """Sign a user out for good: the account and all its tokens stop working. The last active
    admin cannot be revoked (nobody could manage people any more)."""
    admins = [str(r[0]) for r in conn.execute(q.ACTIVE_ADMINS_LOCKED).fetchall()]
    if admins == [username]:
        raise AuthConflict("the last admin cannot be revoked: make another person an admin first")
    row = conn.execute(q.USER_REVOKE, (username,)).fetchone()
    if row is None:
        raise AuthNotFound(f"no active user {username!r}")
    conn.execute(q.TOKENS_REVOKE_OF_USER, (row[0],))


def password_hash_of(conn: psycopg.Connection[Any], username: str) -> tuple[int, str] | None:
    """An active user's id and password hash (to verify without holding the connection)."""
    row = conn.execute(q.USER_PASSWORD_HASH, (username,)).fetchone()
    return None if row is None else (int(str(row[0])), str(row[1]))


def verify_password(stored: tuple[int, str] | None, password: str) -> int | None:
    """The user's id when ``password`` matches ``stored`` (from password_hash_of), else None.
    CPU work (argon2): call it without a database connection held."""
    if stored is None:
        _hasher.hash(password)  # the same work for unknown users: no timing hint
        return None
    try:
        _hasher.verify(stored[1], password)
    except (VerificationError, InvalidHashError):
        return None
    return stored[0]


def upgraded_hash(stored: tuple[int, str], password: str) -> str | None:
    """A fresh hash of a password just verified against ``stored`` when that hash was made with
    other (older) parameters than today's, else None. CPU work, as verify_password."""
    try:
        if not _hasher.check_needs_rehash(stored[1]):
            return None
    except InvalidHashError:
        return None
    return _hasher.hash(password)


def store_upgraded_hash(conn: psycopg.Connection[Any], user_id: int, old: str, new: str) -> None:
    """Replace the user's hash, unless it changed meanwhile (a new password wins)."""
    conn.execute(q.UPGRADE_PASSWORD_HASH, (new, user_id, old))


def check_password(conn: psycopg.Connection[Any], username: str, password: str) -> int | None:
    """The user's id when the password is right and the account active, else None."""
    return verify_password(password_hash_of(conn, username), password)


def password_problem(password: str, username: str = "") -> str | None:
    """Why a new password is refused, or None. NCSC guidance: length, and no password an
    attacker tries first (a deny-list: zxcvbn's common passwords, names, keyboard walks,
    repeats and sequences, and the username) — no composition rules."""
    if len(password) < MIN_PASSWORD:
        return f"passwords need at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"passwords have at most {MAX_PASSWORD} characters"
    if not password.strip():
        return "a password of spaces only is refused"
    from zxcvbn import zxcvbn

    inputs = [username, "wastepilot"]
    verdict = zxcvbn(password[:72], user_inputs=inputs)  # its longest
    if verdict["score"] < MIN_PASSWORD_SCORE:
        hint = (verdict["feedback"].get("warning") or "it is too easy to guess").rstrip(".")
        return f"choose a password that is harder to guess: {hint[0].lower() + hint[1:]}"
    letters = re.sub(r"[^a-z]", "", password.lower())
    if any(letters.startswith(f) for f in FAMOUS_PASSPHRASES):
        return "choose a password that is harder to guess: that phrase is famous"
    if _one_word_with_numbers(password, inputs):
        return (
            "choose a password that is harder to guess: a word with a year, numbers or symbols "
            "added (Summer2026!) is among the first guesses; try three or more random words"
        )
    return None


# passphrases published as examples, tried by every guesser (letters only, lower case)
FAMOUS_PASSPHRASES = ("correcthorsebattery", "thequickbrownfox")
_WORD_AND_NUMBERS = re.compile(r"[^a-z]*([a-z]+)[^a-z]*")


def _one_word_with_numbers(password: str, inputs: list[str]) -> bool:
    """Whether the password is one run of letters with only digits and symbols around it,
    and the run is short or one word a guesser's list has (a dictionary word, a name, a
    season, a month, the username). zxcvbn knows years only up to its own, and scores
    'Summer2026!!' safe."""
    from zxcvbn import zxcvbn

    run = _WORD_AND_NUMBERS.fullmatch(password.lower())
    if run is None:
        return False
    letters = run.group(1)
    if len(letters) < 8:
        return True
    words = zxcvbn(letters, user_inputs=inputs)["sequence"]
    return len(words) == 1 and words[0]["pattern"] == "dictionary"


def create_token(
    conn: psycopg.Connection[Any],
    username: str,
    *,
    scope: Scope = "write",
    days: float = 90,
    name: str = "",
) -> tuple[int, str]:
    """A new token for an active user: (its id, the token). The token is shown once."""
    if scope not in ("read", "write"):
        raise AuthInvalid("scope must be read or write")
    user = conn.execute(q.USER_ACTIVE_ID, (username,)).fetchone()
    if user is None:
        raise AuthNotFound(f"no active user {username!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = conn.execute(
        q.TOKEN_ADD,
        # the database's real clock, as the check in user_for_token: a moved pilot clock
        # (core.clock) never makes a credential valid or expired
        (user[0], name, hash_token(token), scope, days),
    ).fetchone()
    assert row is not None  # noqa: S101  (INSERT ... RETURNING)
    return int(row[0]), token


def role_of(conn: psycopg.Connection[Any], user_id: int) -> Role:
    """The role of a user (by id, as check_password returns it)."""
    row = conn.execute(q.USER_ROLE, (user_id,)).fetchone()
    if row is None:
        raise LookupError(f"no user with id {user_id}")
    return cast(Role, str(row[0]))


def revoke_token(conn: psycopg.Connection[Any], token_id: int) -> None:
    if not conn.execute(
        q.TOKEN_REVOKE,
        (token_id,),
    ).rowcount:
        raise AuthNotFound(f"no active token {token_id}")


def authenticate(conn: psycopg.Connection[Any], token: str) -> Principal | None:
    """Who a bearer token belongs to, or None (unknown, expired, revoked, or its user is)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    digest = hash_token(token)
    row = conn.execute(
        q.TOKEN_OWNER,
        (digest,),
    ).fetchone()
    if row is None or not hmac.compare_digest(str(row[5]), digest):
        return None
    if row[6]:
        # last use to the minute: a read-only request does not write on every call
        conn.execute(q.TOKEN_USED, (row[4],))
    return Principal(int(str(row[0])), str(row[1]), row[2], row[3], int(str(row[4])))


def list_users(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(q.USERS_LIST).fetchall()


def has_users(conn: psycopg.Connection[Any]) -> bool:
    """Whether anybody has an account (revoked ones count: the install is not new)."""
    return conn.execute(q.USERS_ANY).fetchone() is not None
