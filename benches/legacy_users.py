#!/usr/bin/env python3
"""Writes N rows of Django's auth_user as CSV (the columns and value shapes Django writes:
pbkdf2_sha256 hashes of random salts, t/f booleans, timestamps with a zone), for
benches/migrate.sh. The hashes have Django's shape but no known password.

    python3 benches/legacy_users.py 1000000 > auth_user.csv
"""
import base64
import csv
import os
import random
import sys

n = int(sys.argv[1])
random.seed(7)
w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["id", "password", "last_login", "is_superuser", "username", "first_name", "last_name",
            "email", "is_staff", "is_active", "date_joined"])
firsts = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Ken", "Dennis", "John", "Zoë", "José"]
for i in range(1, n + 1):
    salt = base64.b64encode(os.urandom(16)).decode()[:22]
    digest = base64.b64encode(os.urandom(32)).decode()
    first = random.choice(firsts)
    w.writerow([i, f"pbkdf2_sha256$1000000${salt}${digest}", "2024-01-02 10:00:00+00" if i % 3 else "",
                "f", f"user{i}", first, f"Last{i % 997}" if i % 11 else "", f"user{i}@example.com",
                "t" if i % 50 == 0 else "f", "t" if i % 20 else "f", "2019-05-06 09:30:00+00"])
