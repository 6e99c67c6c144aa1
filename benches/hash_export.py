#!/usr/bin/env python3
"""Writes an Auth0 password-hash export (the NDJSON Auth0 support delivers) for the users
of an export: one line for nine database users in ten, with `_id.$oid` from the user id, the
email, a bcrypt-shaped hash, `password_set_date`, `tenant` and `connection`.

usage: hash_export.py EXPORT.ndjson HASHES.ndjson
"""
import json
import sys

ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def main(export, hashes):
    with open(export) as users, open(hashes, "w") as out:
        for i, line in enumerate(users):
            if i % 10 == 0:
                continue
            user = json.loads(line)
            user_id = user.get("user_id", "")
            if not user_id.startswith("auth0|"):
                continue
            identity = (user.get("identities") or [{}])[0]
            tail = "".join(ALPHABET[(i * 31 + k * 7) % 64] for k in range(53))
            record = {
                "_id": {"$oid": user_id[len("auth0|"):]},
                "email": user.get("email"),
                "email_verified": user.get("email_verified", False),
                "passwordHash": "$2b$10$" + tail,
                "password_set_date": {"$date": "2020-01-01T00:00:00.000Z"},
                "tenant": "bench",
                "connection": identity.get("connection"),
                "_tmp_is_unique": True,
            }
            out.write(json.dumps(record, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
