-- userport prepare --table users=realm-export.json#/users --file queries/migrate/keycloak.sql -o import/
--
-- Keycloak → Auth0: the users of a realm export (kc.sh export, or the admin console's
-- partial export with users), their password credential converted from Keycloak's
-- secretData and credentialData (pbkdf2, pbkdf2-sha256, pbkdf2-sha512 and argon2, each
-- with the iterations, salt and parameters it was made with). Users without a password
-- credential are imported without one; realm roles and attributes go to app_metadata.
SELECT
    id                               AS user_id,
    email,
    "emailVerified"                  AS email_verified,
    "firstName"                      AS given_name,
    "lastName"                       AS family_name,
    NOT enabled                      AS blocked,
    keycloak_password(credentials)   AS custom_password_hash,
    username                         AS "app_metadata.keycloak_username",
    "realmRoles"                     AS "app_metadata.roles",
    attributes                       AS "app_metadata.attributes"
FROM users
