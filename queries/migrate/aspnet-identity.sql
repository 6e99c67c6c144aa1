-- userport prepare --table AspNetUsers=sqlite://PATH#AspNetUsers --file queries/migrate/aspnet-identity.sql -o import/
--
-- ASP.NET Core Identity → Auth0: the users of the AspNetUsers table (from SQLite as here, or
-- from PostgreSQL with --table AspNetUsers=postgres://…#AspNetUsers), their PasswordHash
-- read as ASP.NET Identity writes it — version 3 (PBKDF2 with HMAC-SHA1/256/512, the
-- iteration count and salt taken from the hash's header) or version 2 (PBKDF2-HMAC-SHA1,
-- 1000 iterations). Users without a PasswordHash (external logins only) are imported
-- without a password.
SELECT
    "Id"                                     AS user_id,
    "Email"                                  AS email,
    "EmailConfirmed"                         AS email_verified,
    aspnet_identity_password("PasswordHash") AS custom_password_hash,
    "UserName"                               AS "app_metadata.aspnet_username",
    "PhoneNumber"                            AS "user_metadata.phone_number",
    "TwoFactorEnabled" = 1                   AS "app_metadata.two_factor_enabled"
FROM "AspNetUsers"
