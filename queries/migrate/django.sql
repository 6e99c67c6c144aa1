-- userport prepare --table auth_user=postgres://USER@HOST/DB#auth_user --file queries/migrate/django.sql -o import/
--
-- Django (django.contrib.auth) → Auth0: the users of Django's own auth_user table, their
-- passwords converted from every hasher Django ships (pbkdf2_sha256 and pbkdf2_sha1, argon2,
-- bcrypt, scrypt, salted md5/sha1, unsalted md5). bcrypt_sha256 hashes cannot be verified by
-- Auth0: those users are refused with the reason (or, with --unconvertible no-password,
-- imported without a password). Users whose password is unusable (set_unusable_password)
-- are imported without one. Users without an email are refused: Auth0 needs one.
--
-- Django does not record whether an email was verified: every user is imported unverified.
-- If your connection requires usernames, add `username` to the list below.
SELECT
    CAST(id AS VARCHAR)          AS user_id,
    email,
    false                        AS email_verified,
    NULLIF(first_name, '')       AS given_name,
    NULLIF(last_name, '')        AS family_name,
    NULLIF(TRIM(first_name || ' ' || last_name), '') AS name,
    NOT is_active                AS blocked,
    django_password(password)    AS custom_password_hash,
    username                     AS "app_metadata.django_username",
    is_staff                     AS "app_metadata.is_staff",
    is_superuser                 AS "app_metadata.is_superuser",
    CAST(date_joined AS VARCHAR) AS "app_metadata.date_joined",
    CAST(last_login AS VARCHAR)  AS "app_metadata.last_login"
FROM auth_user
