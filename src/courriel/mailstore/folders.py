"""IMAP folders of an account: names, CREATE, DELETE, RENAME, subscriptions, STATUS.

Invariants:
- Names are checked by :func:`check_name`; ``INBOX`` (any case, also as the first level
  of a hierarchy) is stored as ``INBOX``, every other name case-sensitively.
- A parent exists for every folder: CREATE makes missing parents (RFC 9051 §6.3.4),
  DELETE refuses a folder that has children, RENAME moves the children along.
- UIDVALIDITY values of an account only grow: ``accounts.last_uidvalidity`` remembers the
  highest value any folder had, deleted or renamed away ones included, and a new folder
  row gets a larger one (RFC 9051 §2.3.1.1). RENAME makes new folder rows (new ids, new
  UIDVALIDITY, same UIDs), so a session that had the old folder selected sees it gone.
- Subscriptions (RFC 9051 §6.3.7): an existing folder's is ``folders.subscribed``; a
  subscribed name without a folder (deleted or renamed away) is a ``subscriptions`` row.
  A name is in one of the two places only, and LSUB lists both. RENAME subscribes the
  new names of subscribed folders and keeps the old names subscribed.
- Every CREATE, DELETE and RENAME writes one ``changes`` row of kind ``"folders"``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.mailstore.batch import INBOX
from courriel.mailstore.flags import has_flag
from courriel.mailstore.imapcommon import folder_by_name, lock_account, record_changes
from courriel.mailstore.imapport import SEPARATOR, FolderInfo, FolderStatus
from courriel.mailstore.messages import bump_modseq
from courriel.storage.models import accounts, folders, messages, subscriptions

__all__ = [
    "check_name",
    "create_folder",
    "delete_folder",
    "folder_status",
    "list_folders",
    "list_subscriptions",
    "rename_folder",
    "set_subscribed",
]

MAX_NAME = 255  # characters, the width of folders.name


def check_name(name: str) -> str:
    """Validate a folder name and return its stored form (``INBOX`` normalised).

    Raises:
        InvalidInput: empty, too long, an empty hierarchy level (leading, trailing or
            doubled ``/``), a control character, or a LIST wildcard (RFC 9051 §5.1).
    """
    if not name:
        raise InvalidInput("the folder name is empty")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"the folder name is longer than {MAX_NAME} characters")
    if name.startswith(SEPARATOR) or name.endswith(SEPARATOR) or SEPARATOR * 2 in name:
        raise InvalidInput("the folder name has an empty hierarchy level")
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in name):
        raise InvalidInput("the folder name contains a control character")
    # RFC 9051 §5.1: "%" and "*" are LIST wildcards; a name containing them is unlistable.
    if "%" in name or "*" in name:
        raise InvalidInput("the folder name contains a wildcard (% or *)")
    head, sep, rest = name.partition(SEPARATOR)
    # RFC 9051 §5.1: INBOX is case-insensitive.
    return INBOX + sep + rest if head.upper() == INBOX else name


def _parents(name: str) -> list[str]:
    """Every ancestor of ``name``, outermost first (``a/b/c`` → ``a``, ``a/b``)."""
    levels = name.split(SEPARATOR)
    return [SEPARATOR.join(levels[:i]) for i in range(1, len(levels))]


def _info(row: Any) -> FolderInfo:
    return FolderInfo(
        folder_id=int(row.id),
        name=row.name,
        special_use=row.special_use,
        subscribed=bool(row.subscribed),
    )


async def list_folders(conn: AsyncConnection, account_id: int) -> list[FolderInfo]:
    """Every folder of the account, by name."""
    rows = await conn.execute(
        select(folders).where(folders.c.account_id == account_id).order_by(folders.c.name)
    )
    return [_info(row) for row in rows]


async def list_subscriptions(conn: AsyncConnection, account_id: int) -> list[str]:
    """Subscribed names: subscribed folders and subscribed names without a folder."""
    names = set(
        await conn.scalars(
            select(folders.c.name).where(
                folders.c.account_id == account_id, folders.c.subscribed.is_(True)
            )
        )
    )
    names.update(
        await conn.scalars(
            select(subscriptions.c.name).where(subscriptions.c.account_id == account_id)
        )
    )
    return sorted(names)


async def _remember_uidvalidity(conn: AsyncConnection, account_id: int) -> int:
    """Record the highest UIDVALIDITY of the account's folders; return the new mark."""
    highest = await conn.scalar(
        select(func.max(folders.c.uidvalidity)).where(folders.c.account_id == account_id)
    )
    last = await conn.scalar(select(accounts.c.last_uidvalidity).where(accounts.c.id == account_id))
    mark = max(int(highest or 0), int(last or 0))
    await conn.execute(
        update(accounts).where(accounts.c.id == account_id).values(last_uidvalidity=mark)
    )
    return mark


async def _allocate_uidvalidity(conn: AsyncConnection, account_id: int, count: int) -> int:
    """Take ``count`` new UIDVALIDITY values, larger than any the account had; the first."""
    first = await _remember_uidvalidity(conn, account_id) + 1
    await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(last_uidvalidity=first + count - 1)
    )
    return first


async def _take_orphans(conn: AsyncConnection, account_id: int, names: list[str]) -> set[str]:
    """Remove the subscription rows of ``names`` (folders are made for them); return them."""
    taken = set(
        await conn.scalars(
            select(subscriptions.c.name).where(
                subscriptions.c.account_id == account_id, subscriptions.c.name.in_(names)
            )
        )
    )
    if taken:
        await conn.execute(
            delete(subscriptions).where(
                subscriptions.c.account_id == account_id, subscriptions.c.name.in_(taken)
            )
        )
    return taken


async def _existing(conn: AsyncConnection, account_id: int, names: list[str]) -> set[str]:
    return set(
        await conn.scalars(
            select(folders.c.name).where(
                folders.c.account_id == account_id, folders.c.name.in_(names)
            )
        )
    )


async def _insert_folders(
    conn: AsyncConnection, account_id: int, rows: list[dict[str, Any]]
) -> dict[str, int]:
    """Insert folder rows (name plus optional counters); return their ids by name.

    A row is subscribed when it says so or when its name was subscribed without a folder.
    """
    if not rows:
        return {}
    first = await _allocate_uidvalidity(conn, account_id, len(rows))
    subscribed = await _take_orphans(conn, account_id, [r["name"] for r in rows])
    values = [
        {
            "account_id": account_id,
            "special_use": None,
            "uidnext": 1,
            "highest_modseq": 0,
            "recent_uid": 1,
            **row,
            "uidvalidity": first + index,
            "subscribed": bool(row.get("subscribed")) or row["name"] in subscribed,
        }
        for index, row in enumerate(rows)
    ]
    result = await conn.execute(
        insert(folders).returning(folders.c.id, folders.c.name, sort_by_parameter_order=True),
        values,
    )
    return {r.name: int(r.id) for r in result}


async def _folders_changed(conn: AsyncConnection, account_id: int) -> None:
    await record_changes(
        conn, account_id=account_id, folder_id=None, kind="folders", uids=[0], modseq=0
    )


async def create_folder(
    conn: AsyncConnection, account_id: int, name: str, special_use: str | None
) -> FolderInfo:
    """CREATE (RFC 9051 §6.3.4) with missing parents. Raises AlreadyExists, InvalidInput."""
    name = check_name(name)
    await lock_account(conn, account_id)
    wanted = [*_parents(name), name]
    existing = await _existing(conn, account_id, wanted)
    if name in existing:
        raise AlreadyExists(f"folder {name!r} exists already")
    rows: list[dict[str, Any]] = [{"name": n} for n in wanted if n not in existing]
    rows[-1]["special_use"] = special_use
    await _insert_folders(conn, account_id, rows)
    await _folders_changed(conn, account_id)
    return _info(await folder_by_name(conn, account_id, name))


async def _has_children(conn: AsyncConnection, account_id: int, name: str) -> bool:
    child = await conn.scalar(
        select(folders.c.id)
        .where(
            folders.c.account_id == account_id,
            folders.c.name.startswith(name + SEPARATOR, autoescape=True),
        )
        .limit(1)
    )
    return child is not None


async def delete_folder(conn: AsyncConnection, account_id: int, name: str) -> list[str]:
    """DELETE (RFC 9051 §6.3.5): the folder and its messages.

    Returns:
        The blob keys its messages referenced (free them after commit).

    Raises:
        NotFound; InvalidInput for INBOX or a folder with children.
    """
    name = check_name(name)
    if name == INBOX:
        raise InvalidInput("INBOX cannot be deleted")
    await lock_account(conn, account_id)
    row = await folder_by_name(conn, account_id, name)
    # RFC 3501 §6.3.4 would leave a \Noselect parent; we refuse, as Dovecot does.
    if await _has_children(conn, account_id, name):
        raise InvalidInput("the folder has children, delete them first")
    keys = list(
        await conn.scalars(
            select(messages.c.blob_key).where(messages.c.folder_id == row.id).distinct()
        )
    )
    await _remember_uidvalidity(conn, account_id)
    if row.subscribed:
        # RFC 9051 §6.3.7: a subscription outlives its folder.
        await conn.execute(insert(subscriptions).values(account_id=account_id, name=name))
    # messages and changes rows of the folder go with it (ON DELETE CASCADE).
    await conn.execute(delete(folders).where(folders.c.id == row.id))
    await _folders_changed(conn, account_id)
    return keys


async def rename_folder(conn: AsyncConnection, account_id: int, old: str, new: str) -> None:
    """RENAME (RFC 9051 §6.3.6) with children; INBOX's messages move, INBOX stays.

    Raises:
        NotFound, AlreadyExists, InvalidInput (renaming a folder under itself).
    """
    old, new = check_name(old), check_name(new)
    await lock_account(conn, account_id)
    source = await folder_by_name(conn, account_id, old)
    if new == old or (new.startswith(old + SEPARATOR) and old != INBOX):
        raise InvalidInput("a folder cannot be renamed to itself or under itself")
    if old == INBOX:
        await _rename_inbox(conn, account_id, source, new)
    else:
        await _rename_tree(conn, account_id, old, new)
    await _folders_changed(conn, account_id)


async def _new_parents(conn: AsyncConnection, account_id: int, name: str) -> list[dict[str, Any]]:
    parents = _parents(name)
    existing = await _existing(conn, account_id, parents) if parents else set()
    return [{"name": p} for p in parents if p not in existing]


def _copied(row: Row[Any], name: str) -> dict[str, Any]:
    """A folder row under a new name with the counters of ``row`` (UIDs stay valid)."""
    return {
        "name": name,
        "subscribed": row.subscribed,
        "special_use": row.special_use,
        "uidnext": row.uidnext,
        "highest_modseq": row.highest_modseq,
        "recent_uid": row.recent_uid,
    }


async def _rename_inbox(conn: AsyncConnection, account_id: int, inbox: Row[Any], new: str) -> None:
    # RFC 9051 §6.3.6: renaming INBOX moves its messages to a new folder; INBOX stays,
    # empty, and its inferior names are unaffected.
    if await _existing(conn, account_id, [new]):
        raise AlreadyExists(f"folder {new!r} exists already")
    rows = [*await _new_parents(conn, account_id, new), _copied(inbox, new)]
    rows[-1].update(special_use=None, subscribed=False)
    ids = await _insert_folders(conn, account_id, rows)
    uids = list(await conn.scalars(select(messages.c.uid).where(messages.c.folder_id == inbox.id)))
    if not uids:
        return
    await conn.execute(
        update(messages).where(messages.c.folder_id == inbox.id).values(folder_id=ids[new])
    )
    _, modseq = await bump_modseq(conn, int(inbox.id))
    await record_changes(
        conn,
        account_id=account_id,
        folder_id=int(inbox.id),
        kind="expunge",
        uids=uids,
        modseq=modseq,
    )


async def _rename_tree(conn: AsyncConnection, account_id: int, old: str, new: str) -> None:
    tree = (
        await conn.execute(
            select(folders)
            .where(
                folders.c.account_id == account_id,
                (folders.c.name == old)
                | folders.c.name.startswith(old + SEPARATOR, autoescape=True),
            )
            .order_by(folders.c.name)
        )
    ).all()
    targets = {row.name: new + row.name[len(old) :] for row in tree}
    clash = await _existing(conn, account_id, list(targets.values()))
    if clash:
        raise AlreadyExists(f"folder {min(clash)!r} exists already")
    rows = [*await _new_parents(conn, account_id, new)]
    rows += [_copied(row, targets[row.name]) for row in tree]
    ids = await _insert_folders(conn, account_id, rows)
    for row in tree:
        await conn.execute(
            update(messages)
            .where(messages.c.folder_id == row.id)
            .values(folder_id=ids[targets[row.name]])
        )
    orphans = [{"account_id": account_id, "name": r.name} for r in tree if r.subscribed]
    if orphans:
        # The subscriptions follow the folders, and the old names stay subscribed too:
        # RFC 9051 §6.3.7 lets no server drop a subscription on its own.
        await conn.execute(insert(subscriptions), orphans)
    await conn.execute(delete(folders).where(folders.c.id.in_([row.id for row in tree])))


async def set_subscribed(
    conn: AsyncConnection, account_id: int, name: str, subscribed: bool
) -> None:
    """SUBSCRIBE / UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8).

    Raises:
        NotFound: subscribing to a folder that does not exist. InvalidInput: bad name.
    """
    name = check_name(name)
    await lock_account(conn, account_id)
    exists = bool(await _existing(conn, account_id, [name]))
    if subscribed and not exists:
        raise NotFound(f"no folder named {name!r}")
    if exists:
        await conn.execute(
            update(folders)
            .where(folders.c.account_id == account_id, folders.c.name == name)
            .values(subscribed=subscribed)
        )
    if not subscribed:
        await conn.execute(
            delete(subscriptions).where(
                subscriptions.c.account_id == account_id, subscriptions.c.name == name
            )
        )


async def folder_status(conn: AsyncConnection, account_id: int, name: str) -> FolderStatus:
    """STATUS counters (RFC 9051 §6.3.11, RFC 8438 SIZE) in one statement. Raises NotFound."""
    name = check_name(name)

    def total(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    query = (
        select(
            folders.c.uidnext,
            folders.c.uidvalidity,
            folders.c.highest_modseq,
            func.count(messages.c.id).label("messages"),
            total(messages.c.uid >= folders.c.recent_uid).label("recent"),
            total(~has_flag(messages.c.flags, "\\Seen")).label("unseen"),
            total(has_flag(messages.c.flags, "\\Deleted")).label("deleted"),
            func.coalesce(func.sum(messages.c.size), 0).label("size"),
        )
        .select_from(folders.outerjoin(messages, messages.c.folder_id == folders.c.id))
        .where(folders.c.account_id == account_id, folders.c.name == name)
        .group_by(folders.c.id, folders.c.uidnext, folders.c.uidvalidity, folders.c.highest_modseq)
    )
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"no folder named {name!r}")
    return FolderStatus(
        name=name,
        messages=int(row.messages),
        recent=int(row.recent),
        unseen=int(row.unseen),
        deleted=int(row.deleted),
        size=int(row.size),
        uidnext=int(row.uidnext),
        uidvalidity=int(row.uidvalidity),
        highest_modseq=int(row.highest_modseq),
    )
