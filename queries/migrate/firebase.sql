-- userport prepare --table users=firebase-users.json#/users --file queries/migrate/firebase.sql --unconvertible no-password -o import/
--
-- Firebase Authentication → Auth0: the users of `firebase auth:export users.json`.
-- Firebase hashes passwords with its own modified scrypt, keyed with the project's signer
-- key: Auth0 cannot verify it. firebase_password() marks every such hash as unconvertible,
-- so with --unconvertible no-password the users are imported without a password and listed
-- in without-password.json (with the reason) for a password reset; without it they are
-- refused in rejected.json with the same reason. app_metadata.password_reset_required marks
-- them too, for a rule or action that sends the reset.
SELECT
    "localId"                                          AS user_id,
    email,
    "emailVerified"                                    AS email_verified,
    "displayName"                                      AS name,
    firebase_password("passwordHash", salt)            AS custom_password_hash,
    "passwordHash" IS NOT NULL                         AS "app_metadata.password_reset_required",
    "customAttributes"                                 AS "app_metadata.firebase_claims",
    CAST(to_timestamp_millis(CAST("createdAt" AS BIGINT)) AS VARCHAR) AS "app_metadata.firebase_created_at"
FROM users
